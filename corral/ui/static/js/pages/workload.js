// One workload: a Deployment (ready/desired, its ReplicaSets, its pods, scale)
// or a Job (progress, its pods).

import { useState } from '../../vendor/hooks.mjs';
import { html } from '../html.js';
import { useLive } from '../live.js';
import { objectPath, request } from '../api.js';
import {
  Bar, Card, Conditions, EventsTable, KeyValues, Loading, confirmAction,
} from '../components.js';
import { age, byName, meta, selectorText, spec, status } from '../format.js';
import { jobProgress } from './overview.js';
import { PodRows } from './pods.js';

function useOne(kind, namespace, name) {
  const live = useLive(kind, { namespace, fieldSelector: `metadata.name=${name}` });
  return [live, live.items.get(`${namespace}/${name}`)];
}

function ownedBy(obj, uid) {
  return (meta(obj).ownerReferences || []).some((r) => r.uid === uid);
}

function ScaleControl({ kind, namespace, name, replicas }) {
  const [value, setValue] = useState(String(replicas));
  const submit = (e) => {
    e.preventDefault();
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) return;
    confirmAction(`Scale ${namespace}/${name} from ${replicas} to ${n} replicas?`,
      () => request('PATCH', objectPath(kind, namespace, name, 'scale'), {
        body: { spec: { replicas: n } }, contentType: 'application/merge-patch+json',
      }));
  };
  return html`<form class="scale" onSubmit=${submit}>
    <label>Replicas <input id="scale-replicas" type="number" min="0" value=${value}
      onInput=${(e) => setValue(e.target.value)} /></label>
    <button id="scale-submit" type="submit">Scale</button>
  </form>`;
}

export function DeploymentPage({ namespace, name }) {
  const [live, d] = useOne('deployments', namespace, name);
  const selector = d ? selectorText(spec(d).selector) : '';
  const pods = useLive('pods', { namespace, labelSelector: selector }, !!selector);
  const sets = useLive('replicasets', { namespace, labelSelector: selector }, !!selector);
  const events = useLive('events', { namespace, fieldSelector: `involvedObject.name=${name}` });
  if (!d) {
    return html`<${Card} title=${`Deployment ${namespace}/${name}`}><${Loading} live=${live} />
      ${live.synced && html`<p class="muted">not found</p>`}<//>`;
  }
  const desired = spec(d).replicas ?? 1;
  const s = status(d);
  const uid = meta(d).uid;
  const owned = sets.list().filter((rs) => ownedBy(rs, uid)).sort(byName);
  const podsOfSets = new Set(owned.map((rs) => meta(rs).uid));
  const myPods = pods.list().filter((p) => (meta(p).ownerReferences || [])
    .some((r) => podsOfSets.has(r.uid))).sort(byName);
  return html`<div class="grid">
    <${Card} title=${`Deployment ${namespace}/${name}`} id="workload-page">
      <div class="bars"><label>Ready</label>
        <${Bar} used=${s.readyReplicas || 0} progress total=${desired}
          text=${`${s.readyReplicas || 0}/${desired}`} /></div>
      <p id="workload-replicas">desired ${desired} · current ${s.replicas || 0} · updated
        ${s.updatedReplicas || 0} · available ${s.availableReplicas || 0}</p>
      <${ScaleControl} kind="deployments" namespace=${namespace} name=${name} replicas=${desired}
        key=${desired} />
      <h3>Selector</h3><p>${selector}</p>
      <h3>Strategy</h3><p>${(spec(d).strategy || {}).type || 'RollingUpdate'}</p>
      <h3>Labels</h3><${KeyValues} map=${meta(d).labels} />
      <h3>Conditions</h3><${Conditions} conditions=${s.conditions} />
    <//>
    <${Card} title="ReplicaSets"><table id="replicasets"><thead><tr><th>Name</th><th>Revision</th>
      <th>Ready</th><th>Age</th></tr></thead><tbody>
      ${owned.map((rs) => html`<tr key=${meta(rs).uid}><td>${meta(rs).name}</td>
        <td>${(meta(rs).annotations || {})['deployment.kubernetes.io/revision'] || ''}</td>
        <td>${status(rs).readyReplicas || 0}/${spec(rs).replicas ?? 0}</td>
        <td>${age(meta(rs).creationTimestamp)}</td></tr>`)}
    </tbody></table><//>
    <${Card} title="Pods"><${Loading} live=${pods} /><${PodRows} pods=${myPods} id="workload-pods" /><//>
    <${Card} title="Events"><${EventsTable} events=${events.list()} showObject=${false} /><//>
  </div>`;
}

export function JobPage({ namespace, name }) {
  const [live, job] = useOne('jobs', namespace, name);
  const selector = job ? selectorText(spec(job).selector) : '';
  const pods = useLive('pods', { namespace, labelSelector: selector }, !!selector);
  const events = useLive('events', { namespace, fieldSelector: `involvedObject.name=${name}` });
  if (!job) {
    return html`<${Card} title=${`Job ${namespace}/${name}`}><${Loading} live=${live} />
      ${live.synced && html`<p class="muted">not found</p>`}<//>`;
  }
  const p = jobProgress(job);
  return html`<div class="grid">
    <${Card} title=${`Job ${namespace}/${name}`} id="workload-page">
      <div class="bars"><label>Succeeded</label>
        <${Bar} used=${p.done} progress total=${p.completions} text=${`${p.done}/${p.completions}`} /></div>
      <p>active ${p.active} · failed ${p.failed} · parallelism ${spec(job).parallelism ?? 1}
        · completion mode ${spec(job).completionMode || 'NonIndexed'}</p>
      <h3>Labels</h3><${KeyValues} map=${meta(job).labels} />
      <h3>Conditions</h3><${Conditions} conditions=${status(job).conditions} />
    <//>
    <${Card} title="Pods"><${Loading} live=${pods} />
      <${PodRows} pods=${pods.list().sort(byName)} id="workload-pods" /><//>
    <${Card} title="Events"><${EventsTable} events=${events.list()} showObject=${false} /><//>
  </div>`;
}

// One node: status, conditions, resources (requested live; used on demand from
// the agent's stats through the API's node proxy), its pods, cordon/uncordon.

import { useState } from '../../vendor/hooks.mjs';
import { html } from '../html.js';
import { useLive } from '../live.js';
import { objectPath, request } from '../api.js';
import {
  Badge, Bar, Card, Conditions, EventsTable, KeyValues, Loading, confirmAction,
} from '../components.js';
import { bytesText, cpuText, meta, nodeReady, quantity, spec, status } from '../format.js';
import { requestedByNode } from './overview.js';
import { PodRows } from './pods.js';

function Usage({ name, alloc }) {
  const [usage, setUsage] = useState(null);
  const [error, setError] = useState('');
  const measure = async () => {
    try {
      const summary = await request('GET', objectPath('nodes', null, name, 'proxy/stats/summary'));
      setUsage(summary.node || {});
      setError('');
    } catch (err) {
      setError(err.message);
    }
  };
  const cpu = usage ? ((usage.cpu || {}).usageNanoCores || 0) / 1e9 : 0;
  const memory = usage ? (usage.memory || {}).workingSetBytes || 0 : 0;
  return html`<div class="usage">
    <button id="measure-usage" onClick=${measure}>Measure usage now</button>
    ${error && html`<span class="error">${error}</span>`}
    ${usage && html`<div class="bars">
      <label>CPU used</label><${Bar} used=${cpu} total=${quantity(alloc.cpu)}
        text=${`${cpuText(cpu)} / ${cpuText(quantity(alloc.cpu))}`} />
      <label>Memory used</label><${Bar} used=${memory} total=${quantity(alloc.memory)}
        text=${`${bytesText(memory)} / ${bytesText(quantity(alloc.memory))}`} />
    </div>`}
  </div>`;
}

export function NodePage({ name }) {
  const nodes = useLive('nodes', { fieldSelector: `metadata.name=${name}` });
  const pods = useLive('pods', { fieldSelector: `spec.nodeName=${name}` });
  const events = useLive('events', { fieldSelector: `involvedObject.kind=Node,involvedObject.name=${name}` });
  const node = nodes.items.get(name);
  if (!node) {
    return html`<${Card} title=${`Node ${name}`}><${Loading} live=${nodes} />
      ${nodes.synced && html`<p class="muted">node ${name} does not exist</p>`}<//>`;
  }
  const alloc = status(node).allocatable || {};
  const cordoned = !!spec(node).unschedulable;
  const used = requestedByNode(pods.list()).get(name) || { cpu: 0, memory: 0, pods: 0 };
  const toggle = () => confirmAction(
    cordoned ? `Uncordon node ${name}? New pods may be scheduled on it again.`
      : `Cordon node ${name}? No new pods will be scheduled on it.`,
    () => request('PATCH', objectPath('nodes', null, name), {
      body: { spec: { unschedulable: cordoned ? null : true } },
      contentType: 'application/merge-patch+json',
    }),
  );
  const ready = nodeReady(node);
  return html`<div class="grid">
    <${Card} title=${`Node ${name}`} id="node-page" extra=${html`<button id="cordon-toggle"
      onClick=${toggle}>${cordoned ? 'Uncordon' : 'Cordon'}</button>`}>
      <p class="node-status"><${Badge} kind=${ready === 'Ready' ? 'ok' : 'bad'}>${ready}<//>
        ${cordoned && html` <${Badge} kind="warn">SchedulingDisabled<//>`}</p>
      <div class="bars">
        <label>CPU requested</label><${Bar} used=${used.cpu} total=${quantity(alloc.cpu)}
          text=${`${cpuText(used.cpu)} / ${cpuText(quantity(alloc.cpu))}`} />
        <label>Memory requested</label><${Bar} used=${used.memory} total=${quantity(alloc.memory)}
          text=${`${bytesText(used.memory)} / ${bytesText(quantity(alloc.memory))}`} />
      </div>
      <${Usage} name=${name} alloc=${alloc} />
      <h3>Addresses</h3>
      <p>${(status(node).addresses || []).map((a) => `${a.type}: ${a.address}`).join(', ')}</p>
      <h3>Capacity</h3><${KeyValues} map=${status(node).capacity} />
      <h3>Allocatable</h3><${KeyValues} map=${alloc} />
      <h3>Labels</h3><${KeyValues} map=${meta(node).labels} />
      <h3>Taints</h3>
      <p>${(spec(node).taints || []).map((t) => `${t.key}=${t.value || ''}:${t.effect}`).join(', ') || 'none'}</p>
      <h3>Conditions</h3><${Conditions} conditions=${status(node).conditions} />
    <//>
    <${Card} title="Pods on this node"><${Loading} live=${pods} />
      <${PodRows} pods=${pods.list()} id="node-pods" /><//>
    <${Card} title="Events"><${EventsTable} events=${events.list()} showObject=${false} /><//>
  </div>`;
}

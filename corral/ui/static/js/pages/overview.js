// The overview: nodes with requested CPU/memory against allocatable, pods by
// phase, workloads ready/desired, Jobs' progress, frameworks' DRF shares (once
// the kind exists), recent events. All live.

import { html } from '../html.js';
import { useLive } from '../live.js';
import {
  Badge, Bar, Card, EventsTable, Loading, ObjLink, hrefs,
} from '../components.js';
import {
  byName, bytesText, cpuText, isTerminal, meta, nodeReady, podRequests, quantity, spec, status,
} from '../format.js';

const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'];

export function requestedByNode(pods) {
  const used = new Map();
  for (const pod of pods) {
    const node = spec(pod).nodeName;
    if (!node || isTerminal(pod)) continue;
    const r = podRequests(pod);
    const u = used.get(node) || { cpu: 0, memory: 0, pods: 0 };
    u.cpu += r.cpu;
    u.memory += r.memory;
    u.pods += 1;
    used.set(node, u);
  }
  return used;
}

export function NodeRow({ node, used }) {
  const name = meta(node).name;
  const alloc = status(node).allocatable || {};
  const u = used || { cpu: 0, memory: 0, pods: 0 };
  const cpu = quantity(alloc.cpu);
  const memory = quantity(alloc.memory);
  const ready = nodeReady(node);
  return html`<tr key=${name} data-node=${name}>
    <td><a href=${hrefs.node(name)}>${name}</a></td>
    <td class="node-status"><${Badge} kind=${ready === 'Ready' ? 'ok' : 'bad'}>${ready}<//>
      ${spec(node).unschedulable && html` <${Badge} kind="warn">SchedulingDisabled<//>`}</td>
    <td><${Bar} used=${u.cpu} total=${cpu} text=${`${cpuText(u.cpu)} / ${cpuText(cpu)}`}
      title="CPU requested by pods / allocatable" /></td>
    <td><${Bar} used=${u.memory} total=${memory}
      text=${`${bytesText(u.memory)} / ${bytesText(memory)}`}
      title="memory requested by pods / allocatable" /></td>
    <td>${u.pods}</td>
  </tr>`;
}

export function NodesTable({ nodes, used }) {
  return html`<table id="nodes"><thead><tr><th>Node</th><th>Status</th>
    <th>CPU requested</th><th>Memory requested</th><th>Pods</th></tr></thead><tbody>
    ${nodes.sort(byName).map((n) => html`<${NodeRow} key=${meta(n).name} node=${n}
      used=${used.get(meta(n).name)} />`)}
  </tbody></table>`;
}

function PhaseCounts({ pods }) {
  const counts = Object.fromEntries(PHASES.map((p) => [p, 0]));
  for (const pod of pods) counts[status(pod).phase || 'Pending'] = (counts[status(pod).phase || 'Pending'] || 0) + 1;
  return html`<div class="phases" id="pod-phases">
    ${PHASES.map((p) => html`<a class=${`phase ${p.toLowerCase()}`} href="#/pods" key=${p}
      data-phase=${p}><span class="count">${counts[p]}</span> ${p}</a>`)}
    <span class="muted">${pods.length} pods</span>
  </div>`;
}

function Deployments({ live }) {
  const items = live.list().sort(byName);
  return html`<${Loading} live=${live} />
  <table id="deployments"><thead><tr><th>Deployment</th><th>Ready</th><th>Up-to-date</th>
    <th>Available</th></tr></thead><tbody>
    ${items.map((d) => {
      const m = meta(d);
      const desired = spec(d).replicas ?? 1;
      const ready = status(d).readyReplicas || 0;
      return html`<tr key=${m.uid} data-deployment=${`${m.namespace}/${m.name}`}>
        <td><a href=${hrefs.deployment(m.namespace, m.name)}>${m.namespace}/${m.name}</a></td>
        <td><${Bar} used=${ready} progress total=${desired} text=${`${ready}/${desired}`} /></td>
        <td>${status(d).updatedReplicas || 0}</td><td>${status(d).availableReplicas || 0}</td>
      </tr>`;
    })}
    ${live.synced && !items.length && html`<tr><td colspan="4" class="muted">none</td></tr>`}
  </tbody></table>`;
}

export function jobProgress(job) {
  const completions = spec(job).completions ?? (spec(job).parallelism ?? 1);
  const s = status(job);
  return { done: s.succeeded || 0, failed: s.failed || 0, active: s.active || 0, completions };
}

function Jobs({ live }) {
  const items = live.list().sort(byName);
  return html`<table id="jobs"><thead><tr><th>Job</th><th>Progress</th><th>Active</th>
    <th>Failed</th><th>Runs as</th></tr></thead><tbody>
    ${items.map((j) => {
      const m = meta(j);
      const p = jobProgress(j);
      const tasks = (m.annotations || {})['corral.dev/run-as'] === 'tasks';
      return html`<tr key=${m.uid} data-job=${`${m.namespace}/${m.name}`}>
        <td><a href=${hrefs.job(m.namespace, m.name)}>${m.namespace}/${m.name}</a></td>
        <td><${Bar} used=${p.done} progress total=${p.completions} text=${`${p.done}/${p.completions}`} /></td>
        <td>${p.active}</td><td>${p.failed}</td><td>${tasks ? 'task array' : 'pods'}</td>
      </tr>`;
    })}
    ${live.synced && !items.length && html`<tr><td colspan="5" class="muted">none</td></tr>`}
  </tbody></table>`;
}

// Frameworks (Mesos): their dominant share under DRF, as the allocator reports it.
function Frameworks() {
  // Polled, not watched: the overview's five other collections hold five of the
  // browser's six connections to this origin.
  const live = useLive('frameworks', { pollMs: 5000 });
  const items = live.list().sort(byName);
  return html`<${Card} title="Frameworks (DRF)" id="frameworks">
    <${Loading} live=${live} />
    <table><thead><tr><th>Framework</th><th>Dominant share</th><th>Allocated</th></tr></thead>
    <tbody>${items.map((f) => {
      const s = status(f);
      const share = Number(s.dominantShare ?? s.share ?? 0);
      const allocated = s.allocated || s.resources || {};
      return html`<tr key=${meta(f).uid}><td>${meta(f).name}</td>
        <td><${Bar} used=${share} total=${1} text=${`${(share * 100).toFixed(1)}%`} /></td>
        <td>${Object.entries(allocated).map(([k, v]) => `${k}=${v}`).join(', ')}</td></tr>`;
    })}
    ${live.synced && !items.length && html`<tr><td colspan="3" class="muted">none</td></tr>`}
    </tbody></table>
  <//>`;
}

export function Overview({ frameworks }) {
  const nodes = useLive('nodes');
  const pods = useLive('pods');
  const deployments = useLive('deployments');
  const jobs = useLive('jobs');
  const events = useLive('events');
  const used = requestedByNode(pods.list());
  return html`<div class="grid">
    <${Card} title="Nodes" id="nodes-card">
      <${Loading} live=${nodes} />
      <${NodesTable} nodes=${nodes.list()} used=${used} />
    <//>
    <${Card} title="Pods" id="pods-card" extra=${html`<a href="#/pods">all pods ›</a>`}>
      <${Loading} live=${pods} />
      <${PhaseCounts} pods=${pods.list()} />
    <//>
    <${Card} title="Workloads" id="workloads-card"><${Deployments} live=${deployments} /><//>
    <${Card} title="Jobs" id="jobs-card"><${Loading} live=${jobs} /><${Jobs} live=${jobs} /><//>
    ${frameworks && html`<${Frameworks} />`}
    <${Card} title="Recent events" id="events-card">
      <${Loading} live=${events} />
      <${EventsTable} events=${events.list()} limit=${15} id="recent-events" />
    <//>
  </div>`;
}

export { ObjLink };

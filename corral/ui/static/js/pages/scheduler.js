// The scheduler's view: pods waiting for a node and why (the FitError message
// of their PodScheduled condition, as kube-scheduler words it), and recent
// scheduling events: failures, preemptions, placements.

import { html } from '../html.js';
import { useLive } from '../live.js';
import { Card, EventsTable, Loading, Paged, hrefs } from '../components.js';
import { age, byName, condition, meta, spec, status } from '../format.js';

const REASONS = new Set(['FailedScheduling', 'Preempted', 'Scheduled']);

export function SchedulerPage() {
  const pending = useLive('pods', { fieldSelector: 'spec.nodeName=' });
  const events = useLive('events');
  const waiting = pending.list().filter((p) => !meta(p).deletionTimestamp).sort(byName);
  const scheduling = events.list().filter((e) => REASONS.has(e.reason));
  const preemptions = scheduling.filter((e) => e.reason === 'Preempted');
  return html`<div class="grid">
    <${Card} title=${`Pending pods (${waiting.length})`} id="pending-card">
      <${Loading} live=${pending} />
      <${Paged} id="pending" items=${waiting} empty="no pod is waiting for a node"
        head=${html`<tr><th>Pod</th><th>Waiting</th><th>Priority</th><th>Nominated</th>
          <th>Why</th></tr>`}
        row=${(p) => {
          const m = meta(p);
          const c = condition(p, 'PodScheduled');
          return html`<tr key=${m.uid} data-pod=${`${m.namespace}/${m.name}`}>
            <td><a href=${hrefs.pod(m.namespace, m.name)}>${m.namespace}/${m.name}</a></td>
            <td>${age(m.creationTimestamp)}</td>
            <td>${spec(p).priorityClassName || ''} ${spec(p).priority ?? ''}</td>
            <td>${status(p).nominatedNodeName || ''}</td>
            <td class="message fit-error">${c && c.status === 'False' ? c.message : 'not tried yet'}</td>
          </tr>`;
        }} />
    <//>
    <${Card} title=${`Preemptions (${preemptions.length})`} id="preemptions-card">
      <${EventsTable} events=${preemptions} limit=${50} id="preemptions" />
    <//>
    <${Card} title="Scheduling events" id="scheduling-events-card">
      <${Loading} live=${events} />
      <${EventsTable} events=${scheduling} limit=${50} id="scheduling-events" />
    <//>
  </div>`;
}

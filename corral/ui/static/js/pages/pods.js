// Every pod, a page at a time, filtered by namespace and label selector (both
// sent to the API, so the watch itself is narrowed) and by name and phase here.

import { useState } from '../../vendor/hooks.mjs';
import { html } from '../html.js';
import { useLive } from '../live.js';
import { Badge, Card, Loading, Paged, hrefs } from '../components.js';
import { age, byName, meta, podState, restarts, spec, status } from '../format.js';

export function PodRows({ pods, id, pageSize = 50 }) {
  return html`<${Paged} id=${id} items=${pods} pageSize=${pageSize} empty="no pods"
    head=${html`<tr><th>Pod</th><th>State</th><th>Node</th><th>Restarts</th><th>Age</th>
      <th>Labels</th></tr>`}
    row=${(p) => {
      const m = meta(p);
      return html`<tr key=${m.uid} data-pod=${`${m.namespace}/${m.name}`}>
        <td><a href=${hrefs.pod(m.namespace, m.name)}>${m.namespace}/${m.name}</a></td>
        <td><${Badge} kind=${(status(p).phase || 'pending').toLowerCase()}>${podState(p)}<//></td>
        <td>${spec(p).nodeName ? html`<a href=${hrefs.node(spec(p).nodeName)}>${spec(p).nodeName}</a>` : html`<span class="muted">unscheduled</span>`}</td>
        <td>${restarts(p)}</td><td>${age(m.creationTimestamp)}</td>
        <td class="labels">${Object.entries(m.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ')}</td>
      </tr>`;
    }} />`;
}

export function PodsPage({ params }) {
  const [namespace, setNamespace] = useState(params.get('namespace') || '');
  const [selector, setSelector] = useState(params.get('labelSelector') || '');
  const [typed, setTyped] = useState(selector);
  const [name, setName] = useState('');
  const [phase, setPhase] = useState('');
  const namespaces = useLive('namespaces');
  const pods = useLive('pods', { namespace, labelSelector: selector });
  const shown = pods.list().filter((p) => (!name || meta(p).name.includes(name))
    && (!phase || (status(p).phase || 'Pending') === phase)).sort(byName);
  const apply = (e) => { e.preventDefault(); setSelector(typed.trim()); };
  return html`<${Card} title="Pods" id="pods-page">
    <form class="filters" onSubmit=${apply}>
      <label>Namespace <select id="filter-namespace" value=${namespace}
        onChange=${(e) => setNamespace(e.target.value)}>
        <option value="">all namespaces</option>
        ${namespaces.list().sort(byName).map((n) => html`<option key=${meta(n).name}
          value=${meta(n).name}>${meta(n).name}</option>`)}
      </select></label>
      <label>Labels <input id="filter-labels" placeholder="app=web,tier in (a,b)" value=${typed}
        onInput=${(e) => setTyped(e.target.value)} /></label>
      <button type="submit" id="filter-apply">Apply</button>
      <label>Name <input id="filter-name" value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <label>Phase <select id="filter-phase" value=${phase} onChange=${(e) => setPhase(e.target.value)}>
        <option value="">any</option>
        ${['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'].map((p) => html`<option key=${p}>${p}</option>`)}
      </select></label>
    </form>
    <${Loading} live=${pods} />
    <p class="muted" id="pods-count">${shown.length} of ${pods.items.size} pods</p>
    <${PodRows} pods=${shown} id="pods-table" />
  <//>`;
}

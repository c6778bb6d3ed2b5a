// One pod: containers (state, restarts, ports), conditions, events, and the
// log tail of one container, followed live (the API's log?follow=true stream).

import { useEffect, useRef, useState } from '../../vendor/hooks.mjs';
import { html } from '../html.js';
import { useLive } from '../live.js';
import { ApiError, objectPath, query, request, stream } from '../api.js';
import {
  Badge, Card, Conditions, EventsTable, KeyValues, Loading, confirmAction, hrefs,
} from '../components.js';
import { age, meta, podState, spec, status } from '../format.js';

const MAX_LINES = 2000;
const TAIL = 200;

function stateText(s) {
  const st = s.state || {};
  if (st.running) return `Running since ${age(st.running.startedAt)}`;
  if (st.waiting) return `Waiting: ${st.waiting.reason || ''}${st.waiting.message ? ` (${st.waiting.message})` : ''}`;
  if (st.terminated) {
    return `Terminated: ${st.terminated.reason || ''} (exit ${st.terminated.exitCode})`;
  }
  return 'Unknown';
}

function Containers({ pod }) {
  const statuses = new Map((status(pod).containerStatuses || []).map((s) => [s.name, s]));
  const ports = status(pod).portMappings || [];
  return html`<table id="containers"><thead><tr><th>Container</th><th>Image</th>
    <th>Command</th><th>State</th><th>Ready</th><th>Restarts</th><th>Ports</th></tr></thead><tbody>
    ${(spec(pod).containers || []).map((c) => {
      const s = statuses.get(c.name) || {};
      const mine = ports.filter((p) => !p.container || p.container === c.name);
      return html`<tr key=${c.name} data-container=${c.name}>
        <td>${c.name}</td><td>${c.image}</td>
        <td class="command">${[...(c.command || []), ...(c.args || [])].join(' ')}</td>
        <td>${stateText(s)}</td><td>${s.ready ? 'yes' : 'no'}</td>
        <td class="restarts">${s.restartCount || 0}</td>
        <td>${mine.map((p) => `${p.containerPort || ''}→${p.hostIP || ''}:${p.hostPort || ''}`).join(', ')}</td>
      </tr>`;
    })}
  </tbody></table>`;
}

// The log of one container: the last TAIL lines, then every new line as it is
// written, for as long as the page shows it. A container that has not started
// yet is tried again when the pod's status changes.
function LogTail({ namespace, name, container, instance }) {
  const [lines, setLines] = useState([]);
  const [note, setNote] = useState('');
  const [follow, setFollow] = useState(true);
  const pre = useRef(null);
  useEffect(() => {
    if (!container) return undefined;
    const abort = new AbortController();
    let buffer = '';
    let collected = [];
    setLines([]);
    setNote('');
    const path = objectPath('pods', namespace, name, 'log') + query({
      container, follow: follow ? 'true' : undefined, tailLines: TAIL,
    });
    stream(path, (chunk) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop();
      if (!parts.length) return;
      collected = collected.concat(parts).slice(-MAX_LINES);
      setLines(collected);
    }, abort.signal).then(() => {
      if (!abort.signal.aborted) setNote(follow ? 'the container exited; log ended' : '');
    }).catch((err) => {
      if (abort.signal.aborted) return;
      setNote(err instanceof ApiError ? err.message : String(err));
    });
    return () => abort.abort();
  }, [namespace, name, container, instance, follow]);
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [lines, follow]);
  return html`<div class="log">
    <label><input type="checkbox" id="log-follow" checked=${follow}
      onChange=${(e) => setFollow(e.target.checked)} /> follow</label>
    ${note && html`<span class="muted" id="log-note"> ${note}</span>`}
    <pre id="log" ref=${pre}>${lines.join('\n')}</pre>
  </div>`;
}

export function PodPage({ namespace, name }) {
  const live = useLive('pods', { namespace, fieldSelector: `metadata.name=${name}` });
  const events = useLive('events', {
    namespace, fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${name}`,
  });
  const [container, setContainer] = useState('');
  const pod = live.items.get(`${namespace}/${name}`);
  if (!pod) {
    return html`<${Card} title=${`Pod ${namespace}/${name}`}><${Loading} live=${live} />
      ${live.synced && html`<p class="muted" id="pod-gone">pod ${namespace}/${name} does not exist
        (or was deleted)</p>`}<//>`;
  }
  const containers = (spec(pod).containers || []).map((c) => c.name);
  const chosen = containers.includes(container) ? container : containers[0];
  const cs = (status(pod).containerStatuses || []).find((s) => s.name === chosen) || {};
  // A new instance of the container (restart, or first start) restarts the tail.
  const instance = `${cs.restartCount || 0}/${cs.containerID || ''}/${!!(cs.state || {}).running}`;
  const m = meta(pod);
  const remove = () => confirmAction(`Delete pod ${namespace}/${name}?`,
    () => request('DELETE', objectPath('pods', namespace, name)));
  const owner = (m.ownerReferences || [])[0];
  return html`<div class="grid">
    <${Card} title=${`Pod ${namespace}/${name}`} id="pod-page"
      extra=${html`<button id="delete-pod" class="danger" onClick=${remove}>Delete</button>`}>
      <p><${Badge} kind=${(status(pod).phase || 'pending').toLowerCase()}>${podState(pod)}<//>
        ${' '}on ${spec(pod).nodeName ? html`<a href=${hrefs.node(spec(pod).nodeName)}>${spec(pod).nodeName}</a>` : 'no node yet'}
        · IP ${status(pod).podIP || '-'} · age ${age(m.creationTimestamp)}
        ${owner && html` · owned by ${owner.kind} ${owner.name}`}
        ${spec(pod).priorityClassName && html` · priority ${spec(pod).priorityClassName}`}</p>
      <h3>Containers</h3><${Containers} pod=${pod} />
      <h3>Conditions</h3><${Conditions} conditions=${status(pod).conditions} />
      <h3>Labels</h3><div id="pod-labels"><${KeyValues} map=${m.labels} /></div>
      <h3>Annotations</h3><div id="pod-annotations"><${KeyValues} map=${m.annotations} /></div>
    <//>
    <${Card} title="Log" id="log-card" extra=${containers.length > 1 && html`<select
      id="log-container" value=${chosen} onChange=${(e) => setContainer(e.target.value)}>
      ${containers.map((c) => html`<option key=${c} value=${c}>${c}</option>`)}</select>`}>
      <${LogTail} namespace=${namespace} name=${name} container=${chosen} instance=${instance} />
    <//>
    <${Card} title="Events"><${EventsTable} events=${events.list()} showObject=${false}
      id="pod-events" /><//>
  </div>`;
}

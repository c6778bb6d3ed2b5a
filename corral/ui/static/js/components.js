// Small shared pieces: links, bars, badges, tables with pages, the confirm dialog.

import { useState } from '../vendor/hooks.mjs';
import { html } from './html.js';
import { age, eventTime, meta } from './format.js';

const enc = encodeURIComponent;

export const hrefs = {
  node: (name) => `#/nodes/${enc(name)}`,
  pod: (ns, name) => `#/pods/${enc(ns)}/${enc(name)}`,
  deployment: (ns, name) => `#/deployments/${enc(ns)}/${enc(name)}`,
  job: (ns, name) => `#/jobs/${enc(ns)}/${enc(name)}`,
};

export function ObjLink({ kind, ns, name }) {
  const href = kind === 'Pod' ? hrefs.pod(ns, name) : kind === 'Node' ? hrefs.node(name)
    : kind === 'Deployment' ? hrefs.deployment(ns, name) : kind === 'Job' ? hrefs.job(ns, name)
      : null;
  const text = ns ? `${ns}/${name}` : name;
  return href ? html`<a href=${href}>${text}</a>` : html`<span>${text}</span>`;
}

// A bar of used against total. A "progress" bar (ready/desired, done/all) is
// good when full; a resource bar is a warning when nearly full.
export function Bar({ used, total, text, title, progress = false }) {
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  const level = progress ? (pct >= 100 ? 'done' : 'partial')
    : pct > 90 ? 'high' : pct > 70 ? 'mid' : 'low';
  return html`<div class="bar" title=${title || ''}>
    <div class=${`fill ${level}`} style=${{ width: `${pct}%` }}></div>
    <span class="bar-text">${text}</span>
  </div>`;
}

export function Badge({ kind, children }) {
  return html`<span class=${`badge ${kind || ''}`}>${children}</span>`;
}

export function Card({ title, id, children, extra }) {
  return html`<section class="card" id=${id}>
    <header><h2>${title}</h2>${extra}</header>
    ${children}
  </section>`;
}

export function Loading({ live }) {
  if (live.error) return html`<p class="error">${live.error}</p>`;
  if (!live.synced) return html`<p class="muted">Loading…</p>`;
  return null;
}

export function KeyValues({ map }) {
  const entries = Object.entries(map || {});
  if (!entries.length) return html`<span class="muted">none</span>`;
  return html`<ul class="kv">${entries.map(([k, v]) => html`<li key=${k}>
    <span class="k">${k}</span>=<span class="v">${String(v)}</span></li>`)}</ul>`;
}

// A table whose rows come in pages: only the current page is rendered, so a
// thousand objects cost what fifty do.
export function Paged({ items, pageSize = 50, head, row, empty = 'none', id }) {
  const [page, setPage] = useState(0);
  const pages = Math.max(1, Math.ceil(items.length / pageSize));
  const current = Math.min(page, pages - 1);
  const shown = items.slice(current * pageSize, (current + 1) * pageSize);
  return html`<div class="paged" id=${id}>
    <table><thead>${head}</thead><tbody>
      ${shown.length ? shown.map(row) : html`<tr><td colspan="20" class="muted">${empty}</td></tr>`}
    </tbody></table>
    ${pages > 1 && html`<div class="pager">
      <button class="prev" disabled=${current === 0} onClick=${() => setPage(current - 1)}>‹ Prev</button>
      <span class="page-of">page ${current + 1} of ${pages} (${items.length})</span>
      <button class="next" disabled=${current >= pages - 1} onClick=${() => setPage(current + 1)}>Next ›</button>
    </div>`}
  </div>`;
}

export function Conditions({ conditions }) {
  return html`<table class="conditions"><thead><tr><th>Type</th><th>Status</th><th>Reason</th>
    <th>Message</th><th>Since</th></tr></thead><tbody>
    ${(conditions || []).map((c) => html`<tr key=${c.type}>
      <td>${c.type}</td><td>${c.status}</td><td>${c.reason || ''}</td>
      <td class="message">${c.message || ''}</td><td>${age(c.lastTransitionTime)}</td></tr>`)}
  </tbody></table>`;
}

export function EventsTable({ events, limit = 20, showObject = true, id }) {
  const sorted = [...events].sort((a, b) => (eventTime(a) < eventTime(b) ? 1 : -1))
    .slice(0, limit);
  return html`<table class="events" id=${id}><thead><tr><th>Age</th><th>Type</th><th>Reason</th>
    ${showObject && html`<th>Object</th>`}<th>Message</th></tr></thead><tbody>
    ${sorted.length ? sorted.map((e) => {
      const o = e.involvedObject || {};
      return html`<tr key=${meta(e).uid} class=${e.type === 'Warning' ? 'warning' : ''}>
        <td>${age(eventTime(e))}</td><td>${e.type}</td><td>${e.reason}</td>
        ${showObject && html`<td><${ObjLink} kind=${o.kind} ns=${o.namespace} name=${o.name} /></td>`}
        <td class="message">${e.message}</td></tr>`;
    }) : html`<tr><td colspan="5" class="muted">no events</td></tr>`}
  </tbody></table>`;
}

// The one confirm dialog: every write action asks here first.
let showDialog = null;
export function confirmAction(message, action) {
  if (showDialog) showDialog({ message, action });
}

export function ConfirmDialog() {
  const [pending, setPending] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  showDialog = (p) => { setError(''); setPending(p); };
  if (!pending) return null;
  const run = async () => {
    setBusy(true);
    try {
      await pending.action();
      setPending(null);
    } catch (err) {
      setError(err.message || String(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="overlay"><div class="dialog" role="dialog" aria-modal="true">
    <p class="confirm-message">${pending.message}</p>
    ${error && html`<p class="error">${error}</p>`}
    <div class="actions">
      <button id="confirm-cancel" onClick=${() => setPending(null)}>Cancel</button>
      <button id="confirm-yes" class="danger" disabled=${busy} onClick=${run}>Confirm</button>
    </div>
  </div></div>`;
}

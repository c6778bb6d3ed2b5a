// The API as the dashboard uses it: the ordinary Kubernetes paths, with the
// session cookie (sent by the browser; HttpOnly, so never seen here) and the
// CSRF header the server demands before it accepts that cookie.

const CSRF = { 'X-Corral-Csrf': '1' };

export const KINDS = {
  namespaces: { prefix: '/api/v1', plural: 'namespaces', namespaced: false },
  nodes: { prefix: '/api/v1', plural: 'nodes', namespaced: false },
  pods: { prefix: '/api/v1', plural: 'pods', namespaced: true },
  events: { prefix: '/api/v1', plural: 'events', namespaced: true },
  deployments: { prefix: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  replicasets: { prefix: '/apis/apps/v1', plural: 'replicasets', namespaced: true },
  jobs: { prefix: '/apis/batch/v1', plural: 'jobs', namespaced: true },
  frameworks: { prefix: '/apis/corral.dev/v1', plural: 'frameworks', namespaced: false },
};

export class ApiError extends Error {
  constructor(status, body) {
    const message = body && typeof body === 'object' && body.message ? body.message
      : `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
  }
}

const unauthorizedListeners = new Set();
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}
export function unauthorized() {
  for (const fn of unauthorizedListeners) fn();
}

const enc = encodeURIComponent;

export function collectionPath(kind, namespace) {
  const k = KINDS[kind];
  if (k.namespaced && namespace) return `${k.prefix}/namespaces/${enc(namespace)}/${k.plural}`;
  return `${k.prefix}/${k.plural}`;
}

export function objectPath(kind, namespace, name, subresource) {
  const base = `${collectionPath(kind, namespace)}/${enc(name)}`;
  return subresource ? `${base}/${subresource}` : base;
}

export function query(params) {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

export async function request(method, path, { body, contentType, signal } = {}) {
  const headers = { ...CSRF, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
  const response = await fetch(path, {
    method, headers, signal, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (response.status === 401) unauthorized();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Open streams. A page the browser keeps in its back/forward cache keeps its
// connections too, and six are all one origin gets: a page that is hidden
// closes every stream, and one brought back from that cache starts afresh.
const streams = new Set();
addEventListener('pagehide', () => {
  for (const controller of streams) controller.abort();
});
addEventListener('pageshow', (event) => {
  if (event.persisted) location.reload();
});

export function openStreams() {
  return streams.size;
}

// A streamed GET (watch, log follow): calls onChunk with each decoded piece of
// text until the server ends the stream or `signal` aborts it.
export async function stream(path, onChunk, signal) {
  const controller = new AbortController();
  const stop = () => controller.abort();
  if (signal.aborted) stop();
  signal.addEventListener('abort', stop);
  streams.add(controller);
  try {
    await streamUntil(path, onChunk, controller.signal);
  } finally {
    streams.delete(controller);
    signal.removeEventListener('abort', stop);
  }
}

async function streamUntil(path, onChunk, signal) {
  const response = await fetch(path, {
    headers: { ...CSRF, Accept: 'application/json' }, signal, credentials: 'same-origin',
    cache: 'no-store',
  });
  if (response.status === 401) unauthorized();
  if (!response.ok) {
    let data = null;
    try { data = JSON.parse(await response.text()); } catch { /* not a Status */ }
    throw new ApiError(response.status, data);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onChunk(decoder.decode(value, { stream: true }));
  }
}

export async function login(token) {
  const response = await fetch('/ui/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { ...CSRF, 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).message || message; } catch { /* keep */ }
    throw new Error(message);
  }
}

export async function logout() {
  await fetch('/ui/logout', { method: 'POST', credentials: 'same-origin', headers: CSRF });
}

// Does the cluster serve this kind (e.g. frameworks, once the kind exists)?
// Asks the group list first, so a group that does not exist costs no 404.
export async function served(kind) {
  const k = KINDS[kind];
  const groupVersion = k.prefix.replace(/^\/apis\//, '');
  try {
    const groups = await request('GET', '/apis');
    const known = (groups.groups || []).some((g) => (g.versions || [])
      .some((v) => v.groupVersion === groupVersion));
    if (!known) return false;
    const list = await request('GET', k.prefix);
    return (list.resources || []).some((r) => r.name === k.plural);
  } catch {
    return false;
  }
}

// Reading Kubernetes objects for display: quantities, ages, conditions, requests.

const BINARY = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12,
  P: 1e15, E: 1e18 };

// A quantity ("250m", "1.5", "512Mi", "1e3") as a number of base units.
export function quantity(value) {
  if (value === undefined || value === null || value === '') return 0;
  if (typeof value === 'number') return value;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(String(value).trim());
  if (!m) return 0;
  const n = parseFloat(m[1]);
  if (m[2] in BINARY) return n * BINARY[m[2]];
  if (m[2] in DECIMAL) return n * DECIMAL[m[2]];
  return 0;
}

export function cpuText(cores) {
  return cores < 1 ? `${Math.round(cores * 1000)}m` : `${+cores.toFixed(2)}`;
}

export function bytesText(bytes) {
  const units = ['B', 'Ki', 'Mi', 'Gi', 'Ti'];
  let i = 0;
  let n = bytes;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)}${units[i]}`;
}

export function age(timestamp, now = Date.now()) {
  if (!timestamp) return '';
  const seconds = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export const meta = (o) => (o && o.metadata) || {};
export const spec = (o) => (o && o.spec) || {};
export const status = (o) => (o && o.status) || {};

export function condition(obj, type) {
  return (status(obj).conditions || []).find((c) => c.type === type) || null;
}

export function nodeReady(node) {
  const c = condition(node, 'Ready');
  if (!c) return 'Unknown';
  return c.status === 'True' ? 'Ready' : 'NotReady';
}

// What a pod asks of its node: the sum over its containers' requests.
export function podRequests(pod) {
  let cpu = 0;
  let memory = 0;
  for (const c of spec(pod).containers || []) {
    const req = (c.resources || {}).requests || {};
    cpu += quantity(req.cpu);
    memory += quantity(req.memory);
  }
  return { cpu, memory };
}

export function isTerminal(pod) {
  const phase = status(pod).phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

export function restarts(pod) {
  return (status(pod).containerStatuses || []).reduce((n, c) => n + (c.restartCount || 0), 0);
}

// The phase kubectl shows: Terminating, a waiting reason, or the phase itself.
export function podState(pod) {
  if (meta(pod).deletionTimestamp) return 'Terminating';
  for (const c of status(pod).containerStatuses || []) {
    const waiting = (c.state || {}).waiting;
    if (waiting && waiting.reason && waiting.reason !== 'ContainerCreating') return waiting.reason;
  }
  return status(pod).phase || 'Pending';
}

// A LabelSelector object as the labelSelector query text.
export function selectorText(selector) {
  if (!selector) return '';
  const parts = Object.entries(selector.matchLabels || {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions || []) {
    const values = (e.values || []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

export function eventTime(e) {
  return e.lastTimestamp || e.eventTime || (e.series || {}).lastObservedTime
    || e.firstTimestamp || meta(e).creationTimestamp || '';
}

export function byName(a, b) {
  const ka = `${meta(a).namespace || ''}/${meta(a).name}`;
  const kb = `${meta(b).namespace || ''}/${meta(b).name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

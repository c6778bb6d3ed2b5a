// Live collections: list (paged) + watch from the list's resourceVersion, as
// client-go's informer does, so every view updates from the API's own watch
// without reloading and without the server polling anything.
//
//   list ?limit=500&continue=… ─► items ─► watch ?resourceVersion=RV ─► ADDED /
//   MODIFIED / DELETED / BOOKMARK ─► items (subscribers told once per frame)
//     stream ended ─► watch again from the last RV;  410 Gone ─► list again
//
// Collections are shared by key (kind + namespace + selectors) and stopped when
// the last view using them goes away: browsers allow six connections to one
// origin, and every open watch holds one. A view that would hold the sixth polls
// instead ({ pollMs }): with all six held, every other request from the page (a
// click's API call, a navigation, another tab of the dashboard) waits forever.

import { useEffect, useState } from '../vendor/hooks.mjs';
import { ApiError, collectionPath, query, request, stream } from './api.js';

const PAGE = 500;
const RETRY_MS = [500, 1000, 2000, 5000];

export function keyOf(obj) {
  const m = obj.metadata || {};
  return m.namespace ? `${m.namespace}/${m.name}` : m.name;
}

export class LiveList {
  constructor(kind, opts = {}) {
    this.kind = kind;
    this.opts = opts;
    this.items = new Map();
    this.synced = false;
    this.error = null;
    this.version = 0;
    this.listeners = new Set();
    this.abort = new AbortController();
    this.scheduled = false;
    this.rv = '';
    this.failures = 0;
  }

  get path() {
    return collectionPath(this.kind, this.opts.namespace);
  }

  params() {
    return { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
  }

  start() {
    this.run().catch(() => {});
  }

  stop() {
    this.abort.abort();
    this.listeners.clear();
  }

  get stopped() {
    return this.abort.signal.aborted;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  list() {
    return [...this.items.values()];
  }

  changed() {
    this.version += 1;
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    // Many events arrive together (a list, a burst of pods): render once per frame.
    const flush = () => {
      this.scheduled = false;
      for (const fn of this.listeners) fn(this.version);
    };
    if (typeof requestAnimationFrame === 'function' && !document.hidden) {
      requestAnimationFrame(flush);
    } else {
      setTimeout(flush, 50);
    }
  }

  async run() {
    let needList = true;
    while (!this.stopped) {
      try {
        if (this.opts.pollMs) {  // a list now and then instead of a watch: no held connection
          await this.relist();
          this.failures = 0;
          await new Promise((resolve) => setTimeout(resolve, this.opts.pollMs));
          continue;
        }
        if (needList) await this.relist();
        needList = false;
        await this.watch();
        this.failures = 0;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ApiError && err.status === 410) {
          needList = true;
          continue;
        }
        if (err instanceof ApiError && err.status === 401) return;
        this.error = err.message || String(err);
        this.changed();
        const wait = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
        this.failures += 1;
        await new Promise((resolve) => setTimeout(resolve, wait));
        needList = needList || this.failures > 3;
      }
    }
  }

  async relist() {
    const fresh = new Map();
    let cont = '';
    let rv = '';
    do {
      const page = await request('GET', this.path + query({
        ...this.params(), limit: PAGE, continue: cont,
      }), { signal: this.abort.signal });
      for (const item of page.items || []) fresh.set(keyOf(item), item);
      cont = (page.metadata || {}).continue || '';
      rv = (page.metadata || {}).resourceVersion || rv;
    } while (cont);
    this.items = fresh;
    this.rv = rv;
    this.synced = true;
    this.error = null;
    this.changed();
  }

  async watch() {
    let buffer = '';
    const path = this.path + query({
      ...this.params(), watch: 1, resourceVersion: this.rv, allowWatchBookmarks: true,
    });
    await stream(path, (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) this.apply(JSON.parse(line));
      }
    }, this.abort.signal);
  }

  apply(event) {
    const obj = event.object || {};
    if (event.type === 'ERROR') {
      throw new ApiError(obj.code || 500, obj);
    }
    const rv = (obj.metadata || {}).resourceVersion;
    if (rv) this.rv = rv;
    if (event.type === 'BOOKMARK') return;
    if (event.type === 'DELETED') this.items.delete(keyOf(obj));
    else this.items.set(keyOf(obj), obj);
    if (this.error) this.error = null;
    this.changed();
  }
}

const shared = new Map();

function collectionKey(kind, opts) {
  return JSON.stringify([kind, opts.namespace || '', opts.labelSelector || '',
    opts.fieldSelector || '']);
}

function acquire(key, kind, opts) {
  let entry = shared.get(key);
  if (!entry) {
    entry = { live: new LiveList(kind, opts), users: 0, key };
    shared.set(key, entry);
    entry.live.start();
  }
  entry.users += 1;
  return entry;
}

function release(entry) {
  entry.users -= 1;
  if (entry.users === 0) {
    shared.delete(entry.key);
    entry.live.stop();
  }
}

// The live collection for (kind, opts) while the calling component is mounted;
// it re-renders on every change. Pass enabled=false to hold none (yet).
//
// Only an effect acquires (and its cleanup releases): a render may be thrown away
// unmounted before its effects run (a page left at once, a filter changed twice
// in a frame), and what a render had acquired would then hold its watch for good.
// Rendering only looks the collection up, so a shared one shows at once.
export function useLive(kind, opts = {}, enabled = true) {
  const key = collectionKey(kind, opts);
  const [, rerender] = useState(0);
  useEffect(() => {
    if (!enabled) return undefined;
    const entry = acquire(key, kind, opts);
    const off = entry.live.subscribe(() => rerender((n) => n + 1));
    rerender((n) => n + 1);
    return () => {
      off();
      release(entry);
    };
  }, [key, enabled]);
  const entry = enabled ? shared.get(key) : undefined;
  return entry ? entry.live : EMPTY;
}

const EMPTY = { items: new Map(), synced: false, error: null, list: () => [] };

export function liveCount() {
  return shared.size;
}

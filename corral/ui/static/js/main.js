// The dashboard's shell: log in (a bearer token, kept by the server in an
// HttpOnly cookie), then hash routes to the pages. Every page is live.
//
//   #/                       overview
//   #/pods?namespace=&labelSelector=   all pods, paged and filtered
//   #/nodes/NAME             a node
//   #/deployments/NS/NAME    a Deployment       #/jobs/NS/NAME   a Job
//   #/pods/NS/NAME           a pod, with its log
//   #/scheduler              pending pods and why; preemptions

import { useEffect, useState } from '../vendor/hooks.mjs';
import { html, render } from './html.js';
import { login, logout, onUnauthorized, request, served } from './api.js';
import { ConfirmDialog } from './components.js';
import { Overview } from './pages/overview.js';
import { PodsPage } from './pages/pods.js';
import { NodePage } from './pages/node.js';
import { DeploymentPage, JobPage } from './pages/workload.js';
import { PodPage } from './pages/pod.js';
import { SchedulerPage } from './pages/scheduler.js';

function parseRoute(hash) {
  const [path, q] = (hash.replace(/^#/, '') || '/').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(q || '') };
}

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return parseRoute(hash);
}

function Page({ route, frameworks }) {
  const [first, a, b] = route.parts;
  if (!first) return html`<${Overview} frameworks=${frameworks} />`;
  if (first === 'pods' && a && b) return html`<${PodPage} namespace=${a} name=${b} key=${`${a}/${b}`} />`;
  if (first === 'pods') return html`<${PodsPage} params=${route.params} />`;
  if (first === 'nodes' && a) return html`<${NodePage} name=${a} key=${a} />`;
  if (first === 'deployments' && a && b) return html`<${DeploymentPage} namespace=${a} name=${b} key=${`${a}/${b}`} />`;
  if (first === 'jobs' && a && b) return html`<${JobPage} namespace=${a} name=${b} key=${`${a}/${b}`} />`;
  if (first === 'scheduler') return html`<${SchedulerPage} />`;
  return html`<p class="pad">No such page. <a href="#/">Overview</a></p>`;
}

function Login({ onDone }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    try {
      await login(token.trim());
      onDone();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<form class="login card" id="login" onSubmit=${submit}>
    <h1>corral</h1>
    <p>Log in with a bearer token (the admin's is in the kubeconfig <code>corral up</code>
      printed, or run <code>corral dashboard</code> for a one-time link).</p>
    <input type="password" id="token" autocomplete="off" placeholder="token"
      value=${token} onInput=${(e) => setToken(e.target.value)} />
    <button type="submit" id="login-submit">Log in</button>
    ${error && html`<p class="error" id="login-error">${error}</p>`}
  </form>`;
}

// Ages ("42s", "3m") are read from the clock at render: render every few
// seconds so they move on a page where nothing else changes.
function useTicking(ms) {
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, []);
}

function App() {
  const [auth, setAuth] = useState('checking'); // checking | in | out
  const [frameworks, setFrameworks] = useState(false);
  const route = useRoute();
  useTicking(5000);
  const check = async () => {
    try {
      await request('GET', '/api/v1/namespaces?limit=1');
      setAuth('in');
      setFrameworks(await served('frameworks'));
    } catch {
      setAuth('out');
    }
  };
  useEffect(() => {
    check();
    return onUnauthorized(() => setAuth('out'));
  }, []);
  if (auth === 'checking') return html`<p class="muted pad">Connecting…</p>`;
  if (auth === 'out') return html`<${Login} onDone=${check} />`;
  const here = route.parts[0] || '';
  const nav = (to, label, id) => html`<a href=${`#/${to}`} id=${id}
    class=${here === to ? 'active' : ''}>${label}</a>`;
  return html`<div>
    <nav class="top">
      <span class="brand">corral</span>
      ${nav('', 'Overview', 'nav-overview')}${nav('pods', 'Pods', 'nav-pods')}
      ${nav('scheduler', 'Scheduler', 'nav-scheduler')}
      <span class="spacer"></span>
      <button id="logout" onClick=${async () => { await logout(); setAuth('out'); }}>Log out</button>
    </nav>
    <main><${Page} route=${route} frameworks=${frameworks} /></main>
    <${ConfirmDialog} />
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));

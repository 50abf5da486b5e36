/*
 * router.js - hash routes to page modules (the server only knows / and /ui/*).
 *
 *   #/login                                   login
 *   #/                                        DAG list
 *   #/dags/DAG?run=RUN&view=graph|grid        DAG page
 *   #/dags/DAG/runs/RUN                       run page
 *   #/dags/DAG/runs/RUN/tasks/TASK?try=N      task instance page
 *   #/workers                                 schedulers and workers
 *   #/runs?state=S&dag=D&from=F&to=T&page=N   runs of every DAG
 *   #/pools                                   pools and their use
 *   #/import-errors                           DAG files that failed to load
 *   #/audit?dag=&user=                        the audit log (admins)
 *   #/variables                               variables and secrets (admins)
 *
 * Key idea: parse() turns location.hash into {name, params, query} with the
 * path parts decoded; app.js mounts the page module for that name. When only
 * the query of the current page changes (e.g. ?view=grid), the page gets
 * update(query) instead of a remount, if it has one.
 */

const ROUTES = [
    {name: 'login', re: /^\/login$/, keys: []},
    {name: 'dags', re: /^\/?$/, keys: []},
    {name: 'dags', re: /^\/dags\/?$/, keys: []},
    {name: 'workers', re: /^\/workers\/?$/, keys: []},
    {name: 'runs', re: /^\/runs\/?$/, keys: []},
    {name: 'pools', re: /^\/pools\/?$/, keys: []},
    {name: 'import-errors', re: /^\/import-errors\/?$/, keys: []},
    {name: 'audit', re: /^\/audit\/?$/, keys: []},
    {name: 'variables', re: /^\/variables\/?$/, keys: []},
    {name: 'dag', re: /^\/dags\/([^/]+)\/?$/, keys: ['dag']},
    {name: 'run', re: /^\/dags\/([^/]+)\/runs\/([^/]+)\/?$/, keys: ['dag', 'run']},
    {name: 'task', re: /^\/dags\/([^/]+)\/runs\/([^/]+)\/tasks\/([^/]+)\/?$/,
     keys: ['dag', 'run', 'task']},
];

function decode(s) {
    try {
        return decodeURIComponent(s);
    } catch (e) {
        return s;
    }
}

/* {name, params, query, key} of a hash; name 'notfound' when nothing matches. */
export function parse(hash) {
    let h = (hash || '').replace(/^#/, '');
    if (!h) h = '/';
    const qi = h.indexOf('?');
    const path = qi < 0 ? h : h.slice(0, qi);
    const query = {};
    if (qi >= 0)
        for (const [k, v] of new URLSearchParams(h.slice(qi + 1))) query[k] = v;
    for (const r of ROUTES) {
        const m = path.match(r.re);
        if (!m) continue;
        const params = {};
        r.keys.forEach((k, i) => { params[k] = decode(m[i + 1]); });
        return {name: r.name, params, query, key: r.name + ' ' + path};
    }
    return {name: 'notfound', params: {path}, query, key: 'notfound ' + path};
}

export function current() {
    return parse(location.hash);
}

export function go(hash) {
    if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = hash;
}

/* Changes the query of the current route without adding a history entry. */
export function setQuery(q) {
    const h = location.hash.replace(/^#/, '') || '/';
    const qi = h.indexOf('?');
    const path = qi < 0 ? h : h.slice(0, qi);
    const p = new URLSearchParams(qi < 0 ? '' : h.slice(qi + 1));
    for (const k in q) {
        if (q[k] === undefined || q[k] === null || q[k] === '') p.delete(k);
        else p.set(k, q[k]);
    }
    const qs = p.toString();
    history.replaceState(null, '', '#' + path + (qs ? '?' + qs : ''));
}

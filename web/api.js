/*
 * api.js - the REST client: a fetch wrapper around /api/v1 plus the session.
 *
 * Key ideas:
 * - The bearer token lives in sessionStorage["baram.token"] (gone when the tab
 *   closes). The user's name and role are read from the JWT payload (claims
 *   sub, role, exp); the signature is the server's business, not ours.
 * - Every call adds "Authorization: Bearer TOKEN". Any 401 clears the token
 *   and sends the user to #/login with "session expired, log in again".
 * - Log out revokes the token on the server (POST /auth/logout), not only here.
 * - Errors are thrown as ApiError carrying the problem+json 'detail' (or a
 *   readable fallback), so pages can show them in a toast.
 * - Path parts are always passed through enc() (encodeURIComponent).
 */

const TOKEN_KEY = 'baram.token';
const FLASH_KEY = 'baram.flash';
export const BASE = '/api/v1';

export class ApiError extends Error {
    constructor(status, detail, title) {
        super(detail || title || `HTTP ${status}`);
        this.status = status;
        this.title = title || '';
    }
}

export function enc(part) {
    return encodeURIComponent(part);
}

/* ---- session ---- */

export function getToken() {
    return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(tok) {
    sessionStorage.setItem(TOKEN_KEY, tok);
}

export function clearToken() {
    sessionStorage.removeItem(TOKEN_KEY);
}

/* Logging out revokes the token on the server (POST /auth/logout), so that a copy of it (another
 * tab, a script) stops working too, and drops it here at once, whatever the server answers: a
 * server out of reach must not keep anyone logged in (the token then lasts until its exp). */
export async function logout() {
    const tok = getToken();
    clearToken();
    if (!tok) return;
    try {
        await fetch(BASE + '/auth/logout', {
            method: 'POST', cache: 'no-store',
            headers: {Authorization: 'Bearer ' + tok, Accept: 'application/json'},
        });
    } catch (e) { /* unreachable: nothing more to do here */ }
}

/* A message for the login page to show once (e.g. why the user is there). */
export function setFlash(msg) {
    sessionStorage.setItem(FLASH_KEY, msg);
}

export function takeFlash() {
    const m = sessionStorage.getItem(FLASH_KEY);
    sessionStorage.removeItem(FLASH_KEY);
    return m;
}

/* The JWT payload as an object, or null when there is no readable token. */
export function claims() {
    const tok = getToken();
    if (!tok) return null;
    const parts = tok.split('.');
    if (parts.length < 2) return null;
    try {
        let b = parts[1].replace(/-/g, '+').replace(/_/g, '/');
        while (b.length % 4) b += '=';
        const bytes = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
        return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
        return null;
    }
}

/* True when there is a token whose exp (if any) is still in the future. */
export function loggedIn() {
    const c = claims();
    if (!c) return false;
    if (typeof c.exp === 'number' && c.exp * 1000 < Date.now()) return false;
    return true;
}

const RANK = {viewer: 1, operator: 2, admin: 3};

/* True when the session's role may trigger, clear, cancel and pause. */
export function isOperator() {
    const c = claims();
    return !!c && (RANK[c.role] || 0) >= RANK.operator;
}

/* True when the session's role may administer (users, pools). */
export function isAdmin() {
    const c = claims();
    return !!c && (RANK[c.role] || 0) >= RANK.admin;
}

export function whoami() {
    const c = claims() || {};
    return {name: c.sub || '?', role: c.role || 'viewer'};
}

/* Called on any 401: drop the token and go to the login page. */
export function sessionExpired() {
    /* several calls may fail at once: the first one, which had a token, sets the message */
    if (getToken()) setFlash('session expired, log in again');
    clearToken();
    if (!location.hash.startsWith('#/login')) {
        setNext(location.hash);
        location.hash = '#/login';
    }
}

/* Where to go back to after logging in again. */
export function setNext(hash) {
    if (hash && !hash.startsWith('#/login')) sessionStorage.setItem('baram.next', hash);
}

export function takeNext() {
    const n = sessionStorage.getItem('baram.next');
    sessionStorage.removeItem('baram.next');
    return n && n.startsWith('#/') ? n : '#/';
}

/* ---- requests ---- */

async function problem(res) {
    let detail = '', title = res.statusText;
    try {
        const text = await res.text();
        try {
            const p = JSON.parse(text);
            detail = p.detail || '';
            title = p.title || title;
        } catch (e) {
            detail = text.slice(0, 300);
        }
    } catch (e) { /* body unreadable: keep the status line */ }
    return new ApiError(res.status, detail, title);
}

/* Low level: a fetch with the token; returns the Response of a 2xx answer. */
export async function raw(method, path, {body, signal, headers} = {}) {
    const hdrs = Object.assign({Accept: 'application/json'}, headers || {});
    const tok = getToken();
    if (tok) hdrs.Authorization = 'Bearer ' + tok;
    const init = {method, headers: hdrs, signal, cache: 'no-store'};
    if (body !== undefined) {
        hdrs['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    let res;
    try {
        res = await fetch(BASE + path, init);
    } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new ApiError(0, 'cannot reach the baram server (' + e.message + ')');
    }
    if (res.status === 401) {
        sessionExpired();
        throw new ApiError(401, 'session expired, log in again');
    }
    if (!res.ok) throw await problem(res);
    return res;
}

/* A JSON call: api('GET', '/dags'), api('POST', '/dags/x/runs', {conf: {}}). */
export async function api(method, path, body, opts = {}) {
    const res = await raw(method, path, Object.assign({body}, opts));
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
}

export function get(path, opts) {
    return api('GET', path, undefined, opts);
}

/* Every page of a list endpoint (limit/offset/total_entries) joined. */
export async function getAll(path, key, opts) {
    const LIMIT = 10000;
    const sep = path.includes('?') ? '&' : '?';
    let out = [], offset = 0;
    for (;;) {
        const page = await get(`${path}${sep}limit=${LIMIT}&offset=${offset}`, opts);
        const items = page[key] || [];
        out = out.concat(items);
        offset += items.length;
        if (!items.length || offset >= (page.total_entries || 0)) return out;
    }
}

/* Logging in is the one call where a 401 means "wrong password", not "expired". */
export async function login(username, password) {
    let res;
    try {
        res = await fetch(BASE + '/auth/token', {
            method: 'POST',
            headers: {'Content-Type': 'application/json', Accept: 'application/json'},
            body: JSON.stringify({username, password}),
        });
    } catch (e) {
        throw new ApiError(0, 'cannot reach the baram server (' + e.message + ')');
    }
    if (!res.ok) {
        const err = await problem(res);
        if (res.status === 401) err.message = err.message || 'wrong user name or password';
        throw err;
    }
    const tok = await res.json();
    setToken(tok.access_token);
    return tok;
}

/* ---- URLs of the UI's own pages (hash routes) ---- */

export const link = {
    dags: () => '#/',
    workers: () => '#/workers',
    runs: (q) => '#/runs' + query(q),
    pools: () => '#/pools',
    importErrors: () => '#/import-errors',
    audit: () => '#/audit',
    variables: () => '#/variables',
    dag: (dag, q) => `#/dags/${enc(dag)}` + query(q),
    run: (dag, run) => `#/dags/${enc(dag)}/runs/${enc(run)}`,
    task: (dag, run, task, tryn) =>
        `#/dags/${enc(dag)}/runs/${enc(run)}/tasks/${enc(task)}` + query({try: tryn}),
};

function query(q) {
    if (!q) return '';
    const parts = [];
    for (const k in q)
        if (q[k] !== undefined && q[k] !== null && q[k] !== '') parts.push(`${k}=${enc(q[k])}`);
    return parts.length ? '?' + parts.join('&') : '';
}

/*
 * app.js - the entry point: draws the header and mounts the page of the
 * current hash route into #main.
 *
 * Key ideas:
 * - A page module exports mount(root, route) returning {unmount, update?}.
 *   On a route change the old page is unmounted (it stops its event stream,
 *   timers and pending fetches) before the new one mounts; a change of the
 *   query only is passed to update(query) when the page has it.
 * - Without a valid token every route but #/login redirects to #/login.
 * - Errors thrown while mounting become an error panel, never a blank page.
 */

import {getToken, loggedIn, whoami, clearToken, logout, setFlash, setNext, link, get}
    from './api.js';
import {h, replace} from './dom.js';
import {onLiveStatus} from './events.js';
import {parse} from './router.js';
import {errorPanel} from './ui.js';
import * as pageLogin from './page_login.js';
import * as pageDags from './page_dags.js';
import * as pageDag from './page_dag.js';
import * as pageRun from './page_run.js';
import * as pageTask from './page_task.js';
import * as pageWorkers from './page_workers.js';
import * as pageRuns from './page_runs.js';
import * as pagePools from './page_pools.js';
import * as pageImportErrors from './page_import_errors.js';
import * as pageAudit from './page_audit.js';
import * as pageVariables from './page_variables.js';

const PAGES = {login: pageLogin, dags: pageDags, dag: pageDag, run: pageRun, task: pageTask,
               workers: pageWorkers, runs: pageRuns, pools: pagePools,
               'import-errors': pageImportErrors, audit: pageAudit, variables: pageVariables};
/* pages that poll and open no event stream: no live dot there */
const POLLED = new Set(['workers', 'pools', 'import-errors', 'audit', 'variables']);

let page = null;     /* the mounted page's handle */
let pageKey = null;  /* route.key of the mounted page */
let liveDot = null;

function header(route) {
    const top = document.getElementById('top');
    const skip = h('button', {type: 'button', class: 'skip',
                              onclick: () => document.getElementById('main').focus()},
                   'Skip to content');
    const brand = h('a', {class: 'brand', href: link.dags(), 'aria-label': 'baram home'},
                    h('span', {class: 'brand-mark', 'aria-hidden': 'true'}, '≋'), 'baram');
    if (route.name === 'login' || !loggedIn()) {
        replace(top, skip, brand);
        liveDot = null;
        return;
    }
    const me = whoami();
    liveDot = POLLED.has(route.name) ? null
        : h('span', {class: 'live live-off', role: 'status', 'aria-live': 'off',
                     title: 'live updates'}, 'connecting');
    const navLink = (name, href, text) =>
        h('a', {href, testid: 'nav-' + name,
                class: route.name === name ? 'nav-link active' : 'nav-link',
                'aria-current': route.name === name ? 'page' : null}, text);
    /* the number of DAG files that failed to load, asked for on each page change */
    const errCount = h('span', {class: 'count-badge', testid: 'nav-import-errors-count',
                                hidden: true});
    get('/import-errors?limit=1000').then((o) => {
        const n = new Set(((o && o.import_errors) || []).map((e) => e.path)).size;
        errCount.textContent = String(n);
        errCount.hidden = n === 0;
        errCount.setAttribute('aria-label', `${n} file${n === 1 ? '' : 's'} failed to load`);
    }).catch(() => {});
    const nav = h('nav', {class: 'nav', 'aria-label': 'Main'},
                  navLink('dags', link.dags(), 'DAGs'),
                  navLink('runs', link.runs(), 'Runs'),
                  navLink('pools', link.pools(), 'Pools'),
                  navLink('workers', link.workers(), 'Workers'),
                  navLink('import-errors', link.importErrors(), ['Import errors ', errCount]),
                  me.role === 'admin' ? navLink('variables', link.variables(), 'Variables')
                                      : null,
                  me.role === 'admin' ? navLink('audit', link.audit(), 'Audit') : null);
    const logoutButton = h('button', {type: 'button', class: 'btn btn-small', testid: 'logout',
                                      onclick: () => {
                                          logout(); /* revokes the token server-side */
                                          setFlash('');
                                          location.hash = '#/login';
                                      }}, 'Log out');
    replace(top, skip, brand, nav, h('span', {class: 'spacer'}), liveDot,
            h('span', {class: 'whoami', testid: 'whoami',
                       title: 'signed in as ' + me.name + ' (' + me.role + ')'},
              h('span', {class: 'whoami-name'}, me.name), ' ',
              h('span', {class: 'role role-' + me.role}, me.role)),
            logoutButton);
}

onLiveStatus((s) => {
    if (!liveDot) return;
    liveDot.className = 'live ' + (s === 'live' ? 'live-on' : 'live-off');
    liveDot.textContent = s === 'live' ? 'live' : 'reconnecting';
});

function unmount() {
    if (page && page.unmount) {
        try {
            page.unmount();
        } catch (e) {
            console.error(e);
        }
    }
    page = null;
    pageKey = null;
}

function render() {
    const route = parse(location.hash);
    if (route.name !== 'login' && !loggedIn()) {
        unmount();
        if (getToken()) {
            clearToken();
            setFlash('session expired, log in again');
        }
        if (location.hash && location.hash !== '#/' && location.hash !== '#')
            setNext(location.hash);
        location.hash = '#/login';
        return;
    }
    if (page && pageKey === route.key && page.update) {
        page.update(route.query);
        return;
    }
    unmount();
    header(route);
    const root = document.getElementById('main');
    replace(root);
    const mod = PAGES[route.name];
    if (!mod) {
        document.title = 'Not found · baram';
        replace(root, h('div', {class: 'panel panel-error', role: 'alert'},
                        'No such page: ' + route.params.path + '. ',
                        h('a', {href: link.dags()}, 'Back to the DAGs')));
        return;
    }
    try {
        page = mod.mount(root, route) || {};
        pageKey = route.key;
    } catch (e) {
        console.error(e);
        replace(root, errorPanel(e));
    }
}

window.addEventListener('hashchange', render);
window.addEventListener('unhandledrejection', (ev) => {
    /* a page forgot to catch: at least say something */
    const e = ev.reason;
    if (e && (e.name === 'AbortError' || e.status === 401)) {
        ev.preventDefault();
        return;
    }
    console.error(e);
});
render();

/*
 * page_runs.js - the Runs page (#/runs): the runs of every DAG, newest
 * logical date first (GET /runs, the list of `baram runs list`), filtered by
 * state, DAG and a range of logical dates, a page at a time.
 *
 * Key ideas:
 * - The filters and the page live in the URL hash (?state=&dag=&from=&to=
 *   &page=), so a filtered view can be bookmarked and shared; a change of
 *   them is an update(query), not a remount.
 * - Dates are UTC days (logical dates are stored in UTC): "to" asks up to
 *   the end of that day, both ends included.
 * - Live: a run event for a row on screen recolours its badge when its new
 *   state still matches the filter; anything else (a new run, a run leaving
 *   the filter) schedules one throttled refetch of the page.
 */

import {get, link} from './api.js';
import {h, replace} from './dom.js';
import {subscribe, throttle} from './events.js';
import * as fmt from './fmt.js';
import {setQuery} from './router.js';
import {badge, setBadge, errorPanel, loading, timeEl} from './ui.js';

const PAGE = 50;
const RUN_STATES = ['queued', 'running', 'success', 'failed', 'cancelled'];
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/* The filters of a hash query, each checked ('' when absent or malformed). */
function filtersOf(q) {
    const page = parseInt(q.page, 10);
    return {
        state: RUN_STATES.includes(q.state) ? q.state : '',
        dag: q.dag || '',
        from: DAY.test(q.from || '') ? q.from : '',
        to: DAY.test(q.to || '') ? q.to : '',
        page: page > 0 ? page : 1,
    };
}

function apiPath(f) {
    const p = new URLSearchParams();
    if (f.state) p.set('state', f.state);
    if (f.dag) p.set('dag', f.dag);
    if (f.from) p.set('from', f.from);
    if (f.to) p.set('to', f.to + 'T23:59:59.999Z');
    p.set('limit', String(PAGE));
    p.set('offset', String((f.page - 1) * PAGE));
    return '/runs?' + p;
}

function durationOf(r) {
    if (typeof r.duration_s === 'number') return fmt.duration(r.duration_s);
    if (r.started_at && !r.ended_at) return fmt.duration((Date.now() - fmt.ms(r.started_at)) / 1000);
    return '—';
}

export function mount(root, route) {
    document.title = 'Runs · baram';
    let alive = true;
    let f = filtersOf(route.query);
    let ctl = null;
    let rows = new Map(); /* run_id -> state badge */
    let loaded = false;

    const stateSel = h('select', {testid: 'runs-filter-state', 'aria-label': 'State'},
                       h('option', {value: ''}, 'any state'),
                       RUN_STATES.map((s) => h('option', {value: s}, s)));
    const dagSel = h('select', {testid: 'runs-filter-dag', 'aria-label': 'DAG'},
                     h('option', {value: ''}, 'every DAG'));
    const fromIn = h('input', {type: 'date', testid: 'runs-filter-from',
                               'aria-label': 'Logical date from (UTC)'});
    const toIn = h('input', {type: 'date', testid: 'runs-filter-to',
                             'aria-label': 'Logical date to (UTC), included'});
    const clearBtn = h('button', {type: 'button', class: 'btn btn-small',
                                  testid: 'runs-filter-clear'}, 'Clear filters');
    const count = h('span', {class: 'muted', testid: 'runs-count'});
    const prev = h('button', {type: 'button', class: 'btn btn-small', testid: 'runs-prev'},
                   '← Newer');
    const next = h('button', {type: 'button', class: 'btn btn-small', testid: 'runs-next'},
                   'Older →');
    const pageInfo = h('span', {class: 'muted small', testid: 'runs-page'});
    const tbody = h('tbody');
    const table = h('table', {class: 'table runs-table', testid: 'runs-table'},
                    h('caption', {class: 'sr-only'}, 'Runs of every DAG, newest first'),
                    h('thead', null, h('tr', null,
                                       ['DAG', 'Run', 'Type', 'State', 'Logical date', 'Started',
                                        'Duration'].map((c) => h('th', {scope: 'col'}, c)))),
                    tbody);
    const wrap = h('div', {class: 'table-scroll'}, table);
    const slot = h('div', {class: 'slot'}, loading());
    replace(root,
            h('div', {class: 'page-head'}, h('div', null, h('h1', null, 'Runs'), count)),
            h('form', {class: 'filters', testid: 'runs-filters', role: 'search',
                       onsubmit: (ev) => ev.preventDefault()},
              h('label', null, 'State ', stateSel), h('label', null, 'DAG ', dagSel),
              h('label', null, 'From ', fromIn), h('label', null, 'To ', toIn),
              h('span', {class: 'muted small'}, 'logical dates, UTC'), clearBtn),
            wrap, slot,
            h('div', {class: 'pager'}, prev, pageInfo, next));

    function showFilters() {
        stateSel.value = f.state;
        if (f.dag && ![...dagSel.options].some((o) => o.value === f.dag))
            dagSel.appendChild(h('option', {value: f.dag}, f.dag));
        dagSel.value = f.dag;
        fromIn.value = f.from;
        toIn.value = f.to;
    }

    /* a filter changed on the page: back to its first page, in the URL */
    function changed() {
        f = filtersOf({state: stateSel.value, dag: dagSel.value, from: fromIn.value,
                       to: toIn.value, page: 1});
        setQuery({state: f.state, dag: f.dag, from: f.from, to: f.to, page: null});
        refresh();
    }
    for (const el of [stateSel, dagSel, fromIn, toIn]) el.addEventListener('change', changed);
    clearBtn.addEventListener('click', () => {
        stateSel.value = dagSel.value = fromIn.value = toIn.value = '';
        changed();
    });
    function goPage(n) {
        f.page = n;
        setQuery({page: n > 1 ? n : null});
        refresh();
    }
    prev.addEventListener('click', () => goPage(f.page - 1));
    next.addEventListener('click', () => goPage(f.page + 1));

    function row(r) {
        const b = badge(r.state, {testid: 'run-state'});
        rows.set(r.run_id, b);
        return h('tr', {testid: 'run-row', 'data-run': r.run_id, 'data-dag': r.dag,
                        'data-state': r.state},
                 h('td', null, h('a', {href: link.dag(r.dag), testid: 'run-dag'}, r.dag)),
                 h('td', null, h('a', {href: link.run(r.dag, r.run_id), testid: 'run-link',
                                       class: 'run-id'}, r.run_id)),
                 h('td', null, r.type || '—'),
                 h('td', null, b),
                 h('td', null, timeEl(r.logical_date, fmt.logical(r.logical_date))),
                 h('td', null, timeEl(r.started_at, fmt.time(r.started_at))),
                 h('td', {class: 'num'}, durationOf(r)));
    }

    async function refresh() {
        if (ctl) ctl.abort();
        const my = ctl = new AbortController();
        showFilters();
        try {
            const o = await get(apiPath(f), {signal: my.signal});
            if (!alive || my !== ctl) return;
            const list = o.runs || [];
            const total = o.total_entries || 0;
            rows = new Map();
            replace(tbody, list.map(row));
            const first = total ? (f.page - 1) * PAGE + 1 : 0;
            const last = (f.page - 1) * PAGE + list.length;
            count.textContent = `${total} run${total === 1 ? '' : 's'}`;
            pageInfo.textContent = list.length ? `${first}–${last} of ${total}` : '';
            prev.disabled = f.page <= 1;
            next.disabled = last >= total;
            const filtered = f.state || f.dag || f.from || f.to;
            replace(slot, list.length ? null
                    : h('div', {class: 'panel muted', testid: 'runs-empty'},
                        filtered ? 'No run matches these filters.'
                                 : total ? 'No runs on this page.' : 'No runs yet.'));
            wrap.hidden = list.length === 0;
            loaded = true;
        } catch (e) {
            if (!alive || e.name === 'AbortError' || e.status === 401) return;
            replace(slot, errorPanel(e, refresh));
            if (!loaded) wrap.hidden = true;
        }
    }

    async function loadDags() {
        try {
            const o = await get('/dags?limit=10000');
            if (!alive) return;
            const have = new Set([...dagSel.options].map((o2) => o2.value));
            for (const d of o.dags || [])
                if (!have.has(d.dag_id)) dagSel.appendChild(h('option', {value: d.dag_id}, d.dag_id));
            dagSel.value = f.dag;
        } catch (e) {
            /* the list still works; the select offers the DAG of the URL only */
        }
    }

    const refetch = throttle(refresh, 1500);
    const stop = subscribe({}, (ev) => {
        if (ev.type !== 'run') return;
        const b = rows.get(ev.run_id);
        if (b && (!f.state || ev.state === f.state)) {
            setBadge(b, ev.state);
            b.closest('tr').dataset.state = ev.state;
            if (ev.state !== 'running' && ev.state !== 'queued') refetch(); /* its duration */
            return;
        }
        refetch();
    }, refresh);

    loadDags();
    refresh();

    return {
        update(query) {
            f = filtersOf(query);
            refresh();
        },
        unmount() {
            alive = false;
            if (ctl) ctl.abort();
            stop();
            refetch.cancel();
        },
    };
}

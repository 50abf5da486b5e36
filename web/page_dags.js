/*
 * page_dags.js - the DAG list (#/): one row per DAG with its description,
 * schedule, next run, paused toggle, marks for its recent runs (newest first,
 * each a link to the run) and a trigger button; above it a banner of import
 * errors (files that failed to load, with file and line).
 *
 * Key ideas:
 * - GET /dags gives everything per row (recent_runs, next_run; when the server
 *   lacks them we fall back to last_run and to GET /dags/{dag}/runs).
 * - Live: run events recolour the matching run mark in place; an event for a
 *   run we have not seen (a new run) schedules one throttled refetch of the
 *   list. Task-instance events are ignored here.
 * - Operator-only controls (toggle, trigger) are not rendered for viewers.
 */

import {get, api, enc, isOperator, link} from './api.js';
import {h, replace} from './dom.js';
import {subscribe, throttle} from './events.js';
import * as fmt from './fmt.js';
import {glyph, label, norm} from './states.js';
import {toast, toastError, loading, errorPanel} from './ui.js';
import {openTrigger} from './trigger.js';

const MARKS = 10; /* recent runs asked for when the server does not list them */

export function mount(root) {
    document.title = 'DAGs · baram';
    const op = isOperator();
    let alive = true;
    const ctl = new AbortController();

    const errBox = h('div', {class: 'import-errors-slot'});
    const tbody = h('tbody');
    const count = h('span', {class: 'muted'});
    /* client-side filter on id and description, kept across live redraws */
    const filter = h('input', {type: 'search', class: 'search', placeholder: 'Filter DAGs',
                               'aria-label': 'Filter DAGs by id or description',
                               testid: 'dag-filter'});
    filter.addEventListener('input', () => applyFilter());
    function applyFilter() {
        const q = filter.value.trim().toLowerCase();
        for (const tr of tbody.rows) {
            const text = (tr.getAttribute('data-dag') + ' ' +
                          (tr.querySelector('.dag-description') || {}).textContent).toLowerCase();
            tr.hidden = !!q && !text.includes(q);
        }
    }
    const table = h('table', {class: 'table dag-table'},
                    h('caption', {class: 'sr-only'}, 'DAGs'),
                    h('thead', null, h('tr', null,
                                       h('th', {scope: 'col'}, 'DAG'),
                                       h('th', {scope: 'col'}, 'Schedule'),
                                       h('th', {scope: 'col'}, 'Recent runs'),
                                       h('th', {scope: 'col'}, 'Next run'),
                                       op ? h('th', {scope: 'col'}, 'Paused') : null,
                                       op ? h('th', {scope: 'col'}, h('span', {class: 'sr-only'},
                                                                      'Actions')) : null)),
                    tbody);
    replace(root,
            h('div', {class: 'page-head'},
              h('div', null, h('h1', null, 'DAGs'), count), filter),
            errBox,
            h('div', {class: 'table-scroll'}, table),
            h('div', {class: 'slot'}, loading()));

    /* run_id -> [mark elements] for live recolouring */
    let marks = new Map();

    function runMark(dag, r) {
        const st = norm(r.state);
        const when = fmt.logical(r.logical_date);
        return h('a', {class: 'run-mark st-' + st, href: link.run(dag, r.run_id),
                       testid: 'run-mark', 'data-state': st, 'data-run': r.run_id,
                       title: `${label(st)} · ${r.run_id}`,
                       'aria-label': `run ${when}: ${label(st)}`},
                 h('span', {'aria-hidden': 'true'}, glyph(st)));
    }

    function row(d) {
        /* as many as the server lists */
        const runs = d.recent_runs || (d.last_run ? [d.last_run] : []);
        const markEls = runs.map((r) => runMark(d.dag_id, r));
        runs.forEach((r, i) => {
            if (!marks.has(r.run_id)) marks.set(r.run_id, []);
            marks.get(r.run_id).push(markEls[i]);
        });
        const nr = d.next_run;
        const next = nr && (nr.due_at || nr.logical_date)
            ? h('span', {title: `logical date ${nr.logical_date || '—'}, ` +
                                `due ${nr.due_at || '—'}`},
                fmt.time(nr.due_at || nr.logical_date),
                h('span', {class: 'muted small'}, ' ' + fmt.relative(nr.due_at || nr.logical_date)),
                fmt.zoned(nr.due_at_local || nr.logical_date_local, d.timezone)
                    ? h('div', {class: 'muted small', testid: 'next-run-zoned'},
                        fmt.zoned(nr.due_at_local || nr.logical_date_local, d.timezone))
                    : null)
            : h('span', {class: 'muted'}, d.paused && d.schedule ? 'paused' : '—');

        const cells = [
            h('td', {class: 'dag-cell'},
              h('a', {class: 'dag-link', href: link.dag(d.dag_id), testid: 'dag-link'}, d.dag_id),
              d.paused ? h('span', {class: 'pill pill-paused'}, 'paused') : null,
              h('div', {class: 'dag-description muted', testid: 'dag-description'},
                d.description || '')),
            h('td', null, h('code', {class: 'dag-schedule', testid: 'dag-schedule'},
                            d.schedule || 'manual')),
            h('td', null, h('div', {class: 'run-marks', role: 'list',
                                    'aria-label': 'recent runs, newest first'},
                            markEls.length ? markEls.map((m) => h('span', {role: 'listitem'}, m))
                                           : h('span', {class: 'muted small'}, 'no runs yet'))),
            h('td', {class: 'next-run', testid: 'next-run'}, next),
        ];
        if (op) {
            const tog = h('button', {type: 'button', class: 'toggle', testid: 'dag-paused-toggle',
                                     'aria-pressed': d.paused ? 'true' : 'false',
                                     'aria-label': `paused: ${d.dag_id}`,
                                     title: d.paused ? 'Paused: click to unpause'
                                                     : 'Active: click to pause'},
                             h('span', {class: 'toggle-knob', 'aria-hidden': 'true'}),
                             h('span', {class: 'toggle-text'}, d.paused ? 'paused' : 'active'));
            tog.addEventListener('click', () => togglePause(d, tog));
            cells.push(h('td', null, tog));
            cells.push(h('td', {class: 'actions'},
                         h('button', {type: 'button', class: 'btn btn-small', testid: 'dag-trigger',
                                      'aria-label': `trigger ${d.dag_id}`,
                                      onclick: () => openTrigger(d.dag_id, () => refresh())},
                           '▶ Trigger')));
        }
        return h('tr', {testid: 'dag-row', 'data-dag': d.dag_id,
                        class: d.paused ? 'row-paused' : ''}, cells);
    }

    async function togglePause(d, tog) {
        const want = !d.paused;
        tog.disabled = true;
        try {
            const res = await api('PATCH', `/dags/${enc(d.dag_id)}`, {paused: want});
            d.paused = res && typeof res.paused === 'boolean' ? res.paused : want;
            toast(`${d.dag_id} ${d.paused ? 'paused' : 'unpaused'}`);
            refresh();
        } catch (e) {
            toastError(e);
        } finally {
            tog.disabled = false;
        }
    }

    /* Older servers: no recent_runs in /dags; ask each DAG for its runs. */
    async function fillRecent(dags) {
        await Promise.all(dags.map(async (d) => {
            if (d.recent_runs) return;
            try {
                const r = await get(`/dags/${enc(d.dag_id)}/runs?limit=${MARKS}`,
                                    {signal: ctl.signal});
                d.recent_runs = r.runs || [];
            } catch (e) {
                d.recent_runs = d.last_run ? [d.last_run] : [];
            }
        }));
    }

    function drawErrors(list) {
        if (!list.length) {
            replace(errBox);
            return;
        }
        replace(errBox,
                h('section', {class: 'banner banner-error', testid: 'import-errors', role: 'alert',
                              'aria-label': 'Import errors'},
                  h('strong', null, `${list.length} DAG file${list.length > 1 ? 's' : ''} failed ` +
                                    'to load'), ' ',
                  h('a', {href: link.importErrors(), testid: 'import-errors-link'},
                    'See every import error'),
                  h('ul', null, list.map((e) =>
                      h('li', {testid: 'import-error', class: 'import-error'},
                        h('code', null, `${e.path || '?'}${e.line ? ':' + e.line : ''}` +
                                        `${e.line && e.col ? ':' + e.col : ''}`),
                        ' ', e.message || '')))));
    }

    async function refresh() {
        try {
            const [dl, ie] = await Promise.all([
                get('/dags?limit=10000', {signal: ctl.signal}),
                get('/import-errors?limit=1000', {signal: ctl.signal}).catch((e) => {
                    if (e.name === 'AbortError') throw e;
                    return {import_errors: []};
                }),
            ]);
            const dags = dl.dags || [];
            await fillRecent(dags);
            if (!alive) return;
            /* keep the keyboard focus on the same control across the redraw */
            const act = document.activeElement;
            const keep = act && tbody.contains(act)
                ? {dag: act.closest('tr').getAttribute('data-dag'),
                   testid: act.getAttribute('data-testid')} : null;
            marks = new Map();
            replace(tbody, dags.map(row));
            applyFilter();
            if (keep && keep.testid)
                for (const tr of tbody.rows)
                    if (tr.getAttribute('data-dag') === keep.dag) {
                        const el = tr.querySelector(`[data-testid="${keep.testid}"]`);
                        if (el) el.focus();
                    }
            count.textContent = `${dags.length} DAG${dags.length === 1 ? '' : 's'}`;
            drawErrors(ie.import_errors || []);
            const slot = root.querySelector('.slot');
            replace(slot, dags.length ? null
                    : h('div', {class: 'panel muted'},
                        'No DAGs loaded. Put DAG files (*.yaml) in the DAG folder.'));
        } catch (e) {
            if (!alive || e.name === 'AbortError') return;
            const slot = root.querySelector('.slot');
            if (!tbody.firstChild) replace(slot, errorPanel(e, refresh));
            else toastError(e);
        }
    }

    const refetch = throttle(refresh, 1500);
    const stop = subscribe({}, (ev) => {
        if (ev.type !== 'run') return;
        const els = marks.get(ev.run_id);
        if (!els) {
            refetch();
            return;
        }
        const st = norm(ev.state);
        for (const m of els) {
            m.className = 'run-mark st-' + st;
            m.dataset.state = st;
            m.firstChild.textContent = glyph(st);
            m.title = `${label(st)} · ${ev.run_id}`;
            m.setAttribute('aria-label', `run ${ev.run_id}: ${label(st)}`);
        }
    }, refresh);

    /* next-run times move on even without events */
    const tick = setInterval(refresh, 60000);
    refresh();

    return {
        unmount() {
            alive = false;
            ctl.abort();
            stop();
            refetch.cancel();
            clearInterval(tick);
        },
    };
}

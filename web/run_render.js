/*
 * run_render.js - the run page's DOM, made from its data (run_data.js) with
 * h(): the run's facts and actions, the critical-path sentence, the table of
 * task instances. No fetching and no state of the page here.
 *
 * Key ideas:
 * - Every function but createTiTable is pure: data in, fresh elements out.
 * - createTiTable keeps only what drawing needs (the sorted rows, the window
 *   in view, the row elements by task_id): above VIRTUAL instances only the
 *   rows scrolled into view exist, between two spacer rows, so a live redraw
 *   of a 2,000-instance run stays cheap; one row is replaced in place when
 *   its instance changes.
 */

import {link} from './api.js';
import {h, replace} from './dom.js';
import * as fmt from './fmt.js';
import {isEnded, norm} from './states.js';
import {badge, timeEl} from './ui.js';

const VIRTUAL = 300; /* instances; above this the table draws only what is in view */
const OVERSCAN = 20;

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function crumbs(dag, run) {
    return h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
             h('a', {href: link.dags()}, 'DAGs'), ' / ',
             h('a', {href: link.dag(dag, {run})}, dag), ' / ', h('span', null, 'run'));
}

export function title(run) {
    return h('h1', {testid: 'run-title', class: 'run-title'}, h('span', {class: 'muted'}, 'Run '),
             run);
}

/* The run's duration in seconds: the server's, else measured up to now. */
function runDuration(r, now) {
    if (r.duration_s !== undefined && r.duration_s !== null) return r.duration_s;
    if (!r.started_at) return null;
    return ((r.ended_at ? fmt.ms(r.ended_at) : now) - fmt.ms(r.started_at)) / 1000;
}

/* The facts list's items: type, dates, duration and conf. */
export function facts(r, now) {
    const fact = (k, v) => h('div', {class: 'fact'}, h('dt', null, k), h('dd', null, v));
    return [
        fact('Type', r.type || '—'),
        fact('Logical date', timeEl(r.logical_date, fmt.logical(r.logical_date))),
        fact('Queued', timeEl(r.queued_at, fmt.time(r.queued_at))),
        fact('Started', timeEl(r.started_at, fmt.time(r.started_at))),
        fact('Ended', timeEl(r.ended_at, fmt.time(r.ended_at))),
        fact('Duration', fmt.duration(runDuration(r, now))),
        r.conf && Object.keys(r.conf).length
            ? fact('Conf', h('code', {class: 'conf'}, JSON.stringify(r.conf))) : null,
    ];
}

/* The page's buttons: the graph of the run, and cancel when onCancel is given. */
export function actions(dag, run, onCancel) {
    return [h('a', {class: 'btn', href: link.dag(dag, {run})}, 'Graph of this run'),
            onCancel ? h('button', {type: 'button', class: 'btn btn-danger', testid: 'run-cancel',
                                    onclick: onCancel}, '■ Cancel run') : null];
}

/* The Timeline card around the Gantt (gantt.js) and the critical-path sentence. */
export function timelineCard(critEl, ganttEl) {
    const key = (k, text) => [h('span', {class: 'key key-' + k, 'aria-hidden': 'true'}, text)];
    return h('section', {class: 'card', 'aria-labelledby': 'h-gantt'},
             h('div', {class: 'card-head'}, h('h2', {id: 'h-gantt'}, 'Timeline'),
               h('span', {class: 'gantt-key muted small'},
                 key('q'), ' queued ', key('r'), ' running ', key('d'), ' retry delay ',
                 key('c', '◆'), ' critical path')),
             critEl, ganttEl);
}

export function tisCard(countEl, tableEl) {
    return h('section', {class: 'card', 'aria-labelledby': 'h-tis'},
             h('div', {class: 'card-head'}, h('h2', {id: 'h-tis'}, 'Task instances'), countEl),
             tableEl);
}

/* notify: the run's hook notifications (GET .../deliveries), one row each: hook, task and
 * try, notifier, state badge, attempts, the last status and error. */
export function deliveriesCard(tbodyEl, countEl) {
    return h('section', {class: 'card', 'aria-labelledby': 'h-notify', testid: 'deliveries'},
             h('div', {class: 'card-head'}, h('h2', {id: 'h-notify'}, 'Notifications'), countEl),
             h('div', {class: 'table-scroll'},
               h('table', {class: 'table deliveries-table'},
                 h('thead', null, h('tr', null, ...['Hook', 'Task', 'Try', 'Notifier', 'State',
                                                   'Attempts', 'Status', 'Error', 'Updated']
                     .map((c) => h('th', {scope: 'col'}, c)))),
                 tbodyEl)));
}

/* A state badge in the colours of a task state, labelled pending, sent or failed. */
function deliveryBadge(state) {
    const b = badge(state === 'sent' ? 'success' : state === 'failed' ? 'failed' : 'queued');
    b.lastChild.textContent = state;
    return b;
}

export function deliveryRows(list) {
    if (!list.length)
        return [h('tr', null, h('td', {colspan: 9, class: 'muted'}, 'No notifications'))];
    return list.map((d) => h('tr', {testid: 'delivery-row', 'data-hook': d.hook,
                                    'data-state': d.state, 'data-notifier': d.notifier},
                             h('td', null, d.hook), h('td', null, d.task || '—'),
                             h('td', null, d.try == null ? '—' : String(d.try)),
                             h('td', null, d.notifier),
                             h('td', null, deliveryBadge(d.state)),
                             h('td', null, String(d.attempts)),
                             h('td', null, d.status == null ? '—' : String(d.status)),
                             h('td', {class: 'small'}, d.error || ''),
                             h('td', {class: 'small'}, fmt.time(d.updated_at))));
}

export function countText(n) {
    return plural(n, 'instance');
}

/* The content of the critical-path line: the path, or why there is none yet. */
export function criticalText(crit, someEnded) {
    const ids = crit.ids;
    if (!ids.length)
        return someEnded ? 'Critical path: no task has ended.'
                         : 'Critical path: shown once tasks end.';
    return [h('span', {class: 'crit-mark', 'aria-hidden': 'true'}, '◆ '),
            h('strong', null, 'Critical path'),
            ` (${plural(ids.length, 'task')}, ${fmt.duration(crit.length_s)}): `,
            ids.length > 40 ? ids.slice(0, 20).join(' → ') + ' → … → ' + ids.slice(-19).join(' → ')
                            : ids.join(' → ')];
}

/* The instances in table order: by when they entered the queue, then by id. */
function tableOrder(tis) {
    const at = (ti) => {
        const t = fmt.ms(ti.queued_at || ti.scheduled_at);
        return isNaN(t) ? Infinity : t;
    };
    return tis.slice().sort((a, b) => at(a) - at(b) || (a.task_id < b.task_id ? -1 : 1));
}

/*
 * One row of the instance table. o: {href, op (draw the actions cell),
 * clearable (the run has ended: every instance may be cleared), crit, onClear(task, down)}.
 */
export function tiRow(ti, o) {
    const st = norm(ti.state);
    const id = ti.task_id;
    const exit = ti.exit_code === null || ti.exit_code === undefined ? '—' : ti.exit_code;
    const clear = (down) => h('button', {type: 'button', class: 'btn btn-small',
                                         testid: down ? 'task-clear-downstream' : 'task-clear',
                                         'aria-label': down ? `Clear ${id} and downstream`
                                                            : `Clear ${id}`,
                                         onclick: () => o.onClear(id, down)},
                              down ? 'Clear + downstream' : 'Clear');
    return h('tr', {testid: 'task-row', 'data-task': id, 'data-state': st,
                    class: o.crit ? 'row-crit' : null},
             h('td', null, h('a', {testid: 'task-link', href: o.href}, id)),
             h('td', null, badge(st),
               ti.note && st === 'queued'
                   ? h('div', {class: 'ti-note small', testid: 'task-note'}, ti.note) : null),
             h('td', null, `${ti.try_number || 0}${ti.max_tries ? ' / ' + ti.max_tries : ''}`),
             h('td', null, timeEl(ti.started_at, fmt.time(ti.started_at))),
             h('td', null, fmt.duration(ti.duration_s)),
             h('td', null, String(exit)),
             h('td', null, ti.pool || ''),
             o.op ? h('td', {class: 'actions'},
                      o.clearable || isEnded(st) ? [clear(false), ' ', clear(true)] : null)
                  : null);
}

function headRow(op) {
    return h('tr', null,
             ['Task', 'State', 'Try', 'Started', 'Duration', 'Exit', 'Pool'].map((c) =>
                 h('th', {scope: 'col'}, c)),
             op ? h('th', {scope: 'col'}, h('span', {class: 'sr-only'}, 'Actions')) : null);
}

/*
 * createTiTable({op, href(ti), onClear(task, downstream)}) ->
 *   {el, draw(tis, {clearable, critSet, queued}), update(ids, tis by id), setCrit(critSet)}
 * draw() sorts and redraws everything; update() replaces the rows of the given
 * instances that are on screen.
 */
export function createTiTable(opts) {
    const cols = opts.op ? 8 : 7;
    const tbody = h('tbody');
    const el = h('div', {class: 'table-scroll ti-scroll'},
                 h('table', {class: 'table ti-table'}, h('thead', null, headRow(opts.op)), tbody));
    let order = [];
    let o = {clearable: false, critSet: new Set(), queued: false};
    let rowEls = new Map(); /* task_id -> tr, the rows on screen */
    let from = -1, to = -1;
    let rowH = 41;          /* measured from the first real row */

    const row = (ti) => tiRow(ti, {href: opts.href(ti), op: opts.op, clearable: o.clearable,
                                   crit: o.critSet.has(ti.task_id), onClear: opts.onClear});
    const spacer = (rows) => {
        const tr = h('tr', {class: 'spacer', 'aria-hidden': 'true'}, h('td', {colspan: cols}));
        tr.style.height = rows * rowH + 'px';
        return tr;
    };

    function render(force) {
        const n = order.length;
        rowEls = new Map();
        if (!n) {
            const why = o.queued ? ': the run is queued (is the DAG paused?)' : '';
            replace(tbody, h('tr', null, h('td', {colspan: cols, class: 'muted'},
                                           `No task instances yet${why}.`)));
            from = to = -1;
            return;
        }
        let a = 0, b = n;
        const virtual = n > VIRTUAL;
        if (virtual) {
            const top = el.scrollTop, hgt = el.clientHeight || 600;
            a = Math.max(0, Math.floor(top / rowH) - OVERSCAN);
            b = Math.min(n, Math.ceil((top + hgt) / rowH) + OVERSCAN);
        }
        if (!force && a === from && b === to) return;
        from = a;
        to = b;
        const rows = order.slice(a, b).map(row);
        order.slice(a, b).forEach((ti, i) => rowEls.set(ti.task_id, rows[i]));
        replace(tbody, a > 0 ? spacer(a) : null, rows, b < n ? spacer(n - b) : null);
        if (virtual) {
            const h1 = rows.length ? rows[0].getBoundingClientRect().height : 0;
            if (h1 > 10 && Math.abs(h1 - rowH) > 0.5) {
                rowH = h1;
                render(true);
            }
        }
    }

    let queued = false;
    el.addEventListener('scroll', () => {
        if (queued || order.length <= VIRTUAL) return;
        queued = true;
        requestAnimationFrame(() => {
            queued = false;
            render(false);
        });
    });

    return {
        el,
        /* o: {clearable, critSet, queued (say why there are no instances)} */
        draw(tis, drawOpts) {
            o = drawOpts;
            order = tableOrder(tis);
            render(true);
        },
        /* the rows of these task_ids, from byId; not on screen: nothing to do */
        update(ids, byId) {
            if (ids.size > 100) {
                render(true);
                return;
            }
            for (const id of ids) {
                const old = rowEls.get(id), ti = byId.get(id);
                if (!old || !ti) continue; /* new instances come with a refresh */
                const tr = row(ti);
                old.replaceWith(tr);
                rowEls.set(id, tr);
            }
        },
        setCrit(critSet) {
            o.critSet = critSet;
            for (const [id, tr] of rowEls) tr.classList.toggle('row-crit', critSet.has(id));
        },
        get clearable() {
            return o.clearable;
        },
    };
}

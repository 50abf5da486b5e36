/*
 * page_run.js - one run (#/dags/DAG/runs/RUN): its state, a Gantt chart with
 * the critical path highlighted and spelled out, the table of its task
 * instances, and the operator actions (cancel the run while it has not
 * ended; clear a task, or a task and its downstream, once that task has
 * ended: in a run still running the scheduler applies it once the tries
 * running now have ended, and the server says so with 202).
 *
 * Key ideas:
 * - Data: the run, all its task instances, and the DAG's graph edges (for the
 *   critical path, see critical.js). Above TABLE_VIRTUAL instances the table
 *   (and the Gantt, see gantt.js) draw only the rows scrolled into view.
 * - Live: events for this run update the instances in memory (state, try and
 *   the matching timestamp from the event's 'at'); the Gantt, critical path
 *   and changed table rows are redrawn at most every REDRAW_MS; a full
 *   refetch of the instances (exit codes, durations) runs at most every
 *   REFETCH_MS while events keep coming. While the run is running the chart's
 *   "now" line moves once a second.
 * - Retried instances (try_number > 1, the first TRIES_MAX of them) have
 *   their tries fetched, four requests at a time, so that the Gantt draws
 *   each try; fetched again only when the instance's try or state changed.
 * - Every action asks first (confirm dialog) and reports in a toast.
 */

import {get, api, enc, isOperator, link} from './api.js';
import {esc, h, replace} from './dom.js';
import {subscribe, throttle} from './events.js';
import * as fmt from './fmt.js';
import {criticalPath} from './critical.js';
import {createGantt} from './gantt.js';
import {loadTis} from './model.js';
import {isEnded, norm, glyph, label} from './states.js';
import {badge, setBadge, confirm, toast, toastError, loading, errorPanel, timeEl} from './ui.js';

const REDRAW_MS = 400;       /* live redraw gap; BIG_REDRAW_MS above BIG instances */
const BIG_REDRAW_MS = 1500;
const BIG = 500;
const REFETCH_MS = 3000;     /* full refetch gap while events flow (x3 above BIG) */
const TABLE_VIRTUAL = 300;   /* instances; above this the table draws only what is in view */
const TRIES_MAX = 100;       /* retried instances whose tries the Gantt fetches (a request each) */

export function mount(root, route) {
    const {dag, run} = route.params;
    document.title = `${run} · ${dag} · baram`;
    const op = isOperator();
    const ctl = new AbortController();
    let alive = true;

    let runInfo = null;
    let tis = [];
    const byId = new Map(); /* task_id -> ti */
    let edges = [];
    const triesOf = new Map(); /* task_id -> {key: 'try:state', tries: [...]} */
    let triesBusy = false, triesAgain = false;
    let crit = {ids: [], length_s: null};
    let critSet = new Set();
    let rowEls = new Map();   /* task_id -> tr */
    let tableEnded = null;    /* whether the table was drawn with clear buttons */
    let actionsFor = null;    /* whether the actions were drawn for an ended run */

    /* ---- skeleton ---- */
    const stateBadge = badge('none', {testid: 'run-state'});
    const actions = h('div', {class: 'page-actions'});
    const meta = h('dl', {class: 'facts'});
    const critText = h('p', {class: 'critical-path', testid: 'critical-path'}, '—');
    const gantt = createGantt({href: (ti) => link.task(dag, run, ti.task_id)});
    const tbody = h('tbody');
    const tableBox = h('div', {class: 'table-scroll ti-scroll'});
    let tableQueued = false;
    tableBox.addEventListener('scroll', () => {
        if (tableQueued || order.length <= TABLE_VIRTUAL) return;
        tableQueued = true;
        requestAnimationFrame(() => {
            tableQueued = false;
            renderTable(false);
        });
    });
    const count = h('span', {class: 'muted small'});
    const body = h('div', {class: 'run-body'}, loading());

    replace(root,
            h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
              h('a', {href: link.dags()}, 'DAGs'), ' / ',
              h('a', {href: link.dag(dag, {run})}, dag), ' / ', h('span', null, 'run')),
            h('div', {class: 'page-head'},
              h('div', null, h('h1', {testid: 'run-title', class: 'run-title'},
                               h('span', {class: 'muted'}, 'Run '), run), stateBadge),
              actions),
            body);

    function drawSkeleton() {
        replace(body,
                meta,
                h('section', {class: 'card', 'aria-labelledby': 'h-gantt'},
                  h('div', {class: 'card-head'}, h('h2', {id: 'h-gantt'}, 'Timeline'),
                    h('span', {class: 'gantt-key muted small'},
                      h('span', {class: 'key key-q', 'aria-hidden': 'true'}), ' queued ',
                      h('span', {class: 'key key-r', 'aria-hidden': 'true'}), ' running ',
                      h('span', {class: 'key key-d', 'aria-hidden': 'true'}), ' retry delay ',
                      h('span', {class: 'key key-c', 'aria-hidden': 'true'}, '◆'),
                      ' critical path')),
                  critText, gantt.el),
                h('section', {class: 'card', 'aria-labelledby': 'h-tis'},
                  h('div', {class: 'card-head'}, h('h2', {id: 'h-tis'}, 'Task instances'), count),
                  tableBox));
        replace(tableBox,
                h('table', {class: 'table ti-table'},
                  h('thead', null, h('tr', null,
                                     ['Task', 'State', 'Try', 'Started', 'Duration', 'Exit',
                                      'Pool'].map((c) => h('th', {scope: 'col'}, c)),
                                     op ? h('th', {scope: 'col'}, h('span', {class: 'sr-only'},
                                                                    'Actions')) : null)),
                  tbody));
    }

    /* ---- drawing ---- */

    function runEnded() {
        return runInfo && isEnded(runInfo.state);
    }

    function drawHead() {
        setBadge(stateBadge, runInfo.state);
        const r = runInfo;
        const fact = (k, v) => h('div', {class: 'fact'}, h('dt', null, k), h('dd', null, v));
        const dur = r.duration_s !== undefined && r.duration_s !== null ? r.duration_s
                    : (r.started_at ? ((r.ended_at ? fmt.ms(r.ended_at) : Date.now()) -
                                       fmt.ms(r.started_at)) / 1000 : null);
        replace(meta,
                fact('Type', r.type || '—'),
                fact('Logical date', timeEl(r.logical_date, fmt.logical(r.logical_date))),
                fact('Queued', timeEl(r.queued_at, fmt.time(r.queued_at))),
                fact('Started', timeEl(r.started_at, fmt.time(r.started_at))),
                fact('Ended', timeEl(r.ended_at, fmt.time(r.ended_at))),
                fact('Duration', fmt.duration(dur)),
                r.conf && Object.keys(r.conf).length
                    ? fact('Conf', h('code', {class: 'conf'}, JSON.stringify(r.conf))) : null);
        /* redrawn only when they change, so keyboard focus stays on them */
        if (actionsFor === runEnded()) return;
        actionsFor = runEnded();
        const graphLink = h('a', {class: 'btn', href: link.dag(dag, {run})}, 'Graph of this run');
        if (op && !runEnded())
            replace(actions, graphLink, h('button', {type: 'button', class: 'btn btn-danger',
                                                     testid: 'run-cancel', onclick: cancelRun},
                                          '■ Cancel run'));
        else replace(actions, graphLink);
    }

    function rowHtml(ti, ended) {
        const st = norm(ti.state);
        const tries = `${ti.try_number || 0}${ti.max_tries ? ' / ' + ti.max_tries : ''}`;
        const exit = ti.exit_code === null || ti.exit_code === undefined ? '—' : ti.exit_code;
        let acts = '';
        if (op) {
            acts = '<td class="actions">';
            if (ended || isEnded(norm(ti.state)))
                acts += `<button type="button" class="btn btn-small" data-testid="task-clear"` +
                        ` data-act="clear" aria-label="Clear ${esc(ti.task_id)}">Clear</button> ` +
                        `<button type="button" class="btn btn-small"` +
                        ` data-testid="task-clear-downstream" data-act="clear-down"` +
                        ` aria-label="Clear ${esc(ti.task_id)} and downstream">` +
                        `Clear + downstream</button>`;
            acts += '</td>';
        }
        return `<tr data-testid="task-row" data-task="${esc(ti.task_id)}" data-state="${st}"` +
               `${critSet.has(ti.task_id) ? ' class="row-crit"' : ''}>` +
               `<td><a data-testid="task-link" href="${esc(link.task(dag, run, ti.task_id))}">` +
               `${esc(ti.task_id)}</a></td>` +
               `<td><span class="badge st-${st}" data-state="${st}"><span class="glyph"` +
               ` aria-hidden="true">${glyph(st)}</span><span class="badge-label">${label(st)}` +
               `</span></span></td><td>${esc(tries)}</td>` +
               `<td><time title="${esc(ti.started_at || '')}">` +
               `${esc(fmt.time(ti.started_at))}</time></td>` +
               `<td>${esc(fmt.duration(ti.duration_s))}</td><td>${esc(exit)}</td>` +
               `<td>${esc(ti.pool || '')}</td>${acts}</tr>`;
    }

    /*
     * The table: sorted once per full draw (drawTable); above TABLE_VIRTUAL
     * rows only the rows scrolled into view exist, between two spacer rows.
     */
    let order = [];
    let winFrom = -1, winTo = -1;
    let rowH = 41; /* measured from the first real row */

    function drawTable() {
        tableEnded = runEnded();
        order = tis.slice().sort((a, b) => {
            const sa = fmt.ms(a.queued_at || a.scheduled_at);
            const sb = fmt.ms(b.queued_at || b.scheduled_at);
            return (isNaN(sa) ? Infinity : sa) - (isNaN(sb) ? Infinity : sb) ||
                   (a.task_id < b.task_id ? -1 : 1);
        });
        count.textContent = `${tis.length} instance${tis.length === 1 ? '' : 's'}`;
        renderTable(true);
    }

    function renderTable(force) {
        const n = order.length;
        const cols = op ? 8 : 7;
        if (!n) {
            const why = runInfo.state === 'queued' ? ': the run is queued (is the DAG paused?)'
                                                   : '';
            tbody.innerHTML = `<tr><td colspan="${cols}" class="muted">` +
                              `No task instances yet${why}.</td></tr>`;
            rowEls = new Map();
            return;
        }
        let a = 0, b = n;
        const virtual = n > TABLE_VIRTUAL;
        if (virtual) {
            const top = tableBox.scrollTop, hgt = tableBox.clientHeight || 600;
            a = Math.max(0, Math.floor(top / rowH) - 20);
            b = Math.min(n, Math.ceil((top + hgt) / rowH) + 20);
        }
        if (!force && a === winFrom && b === winTo) return;
        winFrom = a;
        winTo = b;
        const parts = [];
        const spacer = `<tr class="spacer" aria-hidden="true"><td colspan="${cols}"></td></tr>`;
        if (a > 0) parts.push(spacer);
        for (let i = a; i < b; i++) parts.push(rowHtml(order[i], tableEnded));
        if (b < n) parts.push(spacer);
        tbody.innerHTML = parts.join('');
        const sp = tbody.querySelectorAll('tr.spacer');
        if (a > 0) sp[0].style.height = a * rowH + 'px';
        if (b < n) sp[sp.length - 1].style.height = (n - b) * rowH + 'px';
        rowEls = new Map();
        for (const tr of tbody.rows)
            if (tr.hasAttribute('data-task')) rowEls.set(tr.getAttribute('data-task'), tr);
        if (virtual) {
            const first = tbody.querySelector('tr[data-task]');
            const h1 = first ? first.getBoundingClientRect().height : 0;
            if (h1 > 10 && Math.abs(h1 - rowH) > 0.5) {
                rowH = h1;
                renderTable(true);
            }
        }
    }

    /* Updates the rows of the given instances in place (or the whole table). */
    function updateRows(ids) {
        if (tableEnded !== runEnded()) {
            drawTable();
            return;
        }
        if (ids.size > 100) {
            renderTable(true);
            return;
        }
        for (const id of ids) {
            const old = rowEls.get(id), ti = byId.get(id);
            if (!old || !ti) continue; /* not on screen; new instances come with a refetch */
            const tmp = document.createElement('tbody');
            tmp.innerHTML = rowHtml(ti, tableEnded);
            const tr = tmp.firstChild;
            old.replaceWith(tr);
            rowEls.set(id, tr);
        }
    }

    function drawCritical() {
        crit = criticalPath(tis, edges);
        critSet = new Set(crit.ids);
        if (!crit.ids.length) {
            critText.textContent = runEnded() || tis.some((t) => t.ended_at)
                ? 'Critical path: no task has ended.' : 'Critical path: shown once tasks end.';
            return;
        }
        replace(critText,
                h('span', {class: 'crit-mark', 'aria-hidden': 'true'}, '◆ '),
                h('strong', null, 'Critical path'),
                ` (${crit.ids.length} task${crit.ids.length === 1 ? '' : 's'}, ` +
                `${fmt.duration(crit.length_s)}): `,
                crit.ids.length > 40
                    ? crit.ids.slice(0, 20).join(' → ') + ' → … → ' +
                      crit.ids.slice(-19).join(' → ')
                    : crit.ids.join(' → '));
        for (const tr of tbody.rows) tr.classList.toggle('row-crit', critSet.has(
            tr.getAttribute('data-task')));
    }

    function drawGantt() {
        const tries = new Map();
        for (const [id, t] of triesOf) tries.set(id, t.tries);
        gantt.draw(tis, critSet, Date.now(), tries);
    }

    function drawAll() {
        drawHead();
        drawCritical();
        drawTable();
        drawGantt();
    }

    /* ---- data ---- */

    function setTis(list) {
        tis = list;
        byId.clear();
        for (const ti of tis) byId.set(ti.task_id, ti);
    }

    async function load() {
        try {
            const [r, list, g] = await Promise.all([
                get(`/dags/${enc(dag)}/runs/${enc(run)}`, {signal: ctl.signal}),
                loadTis(dag, run, {signal: ctl.signal}),
                get(`/dags/${enc(dag)}/graph`, {signal: ctl.signal}).catch((e) => {
                    if (e.name === 'AbortError') throw e;
                    return {edges: []}; /* no critical path without edges, the rest works */
                }),
            ]);
            if (!alive) return;
            runInfo = r;
            setTis(list);
            edges = g.edges || [];
            if (!body.contains(meta)) drawSkeleton();
            drawAll();
            loadTries();
        } catch (e) {
            if (!alive || e.name === 'AbortError') return;
            if (!runInfo) replace(body, errorPanel(e, load));
            else toastError(e);
        }
    }

    /* The tries of retried instances, for the Gantt (see the design note above). */
    async function loadTries() {
        if (triesBusy) { /* once more when this round is done, with what changed meanwhile */
            triesAgain = true;
            return;
        }
        const keyOf = (ti) => `${ti.try_number}:${ti.state}`;
        for (const id of triesOf.keys()) { /* gone, or cleared back to a first try */
            const ti = byId.get(id);
            if (!ti || (ti.try_number || 0) < 2) triesOf.delete(id);
        }
        let room = TRIES_MAX - triesOf.size;
        const want = tis.filter((ti) => {
            if ((ti.try_number || 0) < 2) return false;
            const known = triesOf.get(ti.task_id);
            if (known) return known.key !== keyOf(ti);
            return room-- > 0;
        });
        if (!want.length) return;
        triesBusy = true;
        try {
            for (let i = 0; i < want.length && alive; i += 4) {
                const got = await Promise.all(want.slice(i, i + 4).map((ti) =>
                    get(`/dags/${enc(dag)}/runs/${enc(run)}/tasks/${enc(ti.task_id)}`,
                        {signal: ctl.signal})
                        .then((d) => [ti, d], (e) => {
                            if (e.name === 'AbortError') throw e;
                            return [ti, null]; /* that row keeps one bar */
                        })));
                for (const [ti, d] of got) {
                    if (d && Array.isArray(d.tries))
                        triesOf.set(ti.task_id, {key: keyOf(ti), tries: d.tries});
                }
            }
        } catch (e) {
            if (alive && e.name !== 'AbortError') toastError(e);
            return;
        } finally {
            triesBusy = false;
        }
        if (!alive) return;
        drawGantt();
        if (triesAgain) {
            triesAgain = false;
            loadTries();
        }
    }

    const refetch = throttle(async () => {
        try {
            const [r, list] = await Promise.all([
                get(`/dags/${enc(dag)}/runs/${enc(run)}`, {signal: ctl.signal}),
                loadTis(dag, run, {signal: ctl.signal}),
            ]);
            if (!alive) return;
            runInfo = r;
            setTis(list);
            drawAll();
            loadTries();
        } catch (e) {
            if (alive && e.name !== 'AbortError') toastError(e);
        }
    }, () => (tis.length > BIG ? REFETCH_MS * 3 : REFETCH_MS));

    let dirty = new Set();
    const redraw = throttle(() => {
        if (!alive || !runInfo) return;
        const ids = dirty;
        dirty = new Set();
        drawHead();
        drawCritical();
        updateRows(ids);
        drawGantt();
    }, () => (tis.length > BIG ? BIG_REDRAW_MS : REDRAW_MS));

    /* ---- actions ---- */

    async function cancelRun() {
        const ok = await confirm('Cancel this run?',
                                 `Run ${run} of ${dag} stops: running tasks are stopped, ` +
                                 'waiting ones will not start.', 'Cancel run', true);
        if (!ok) return;
        try {
            const res = await api('POST', `/dags/${enc(dag)}/runs/${enc(run)}/cancel`);
            toast(res && res.state === 'cancelled' ? 'Run cancelled' : 'Cancel requested');
            refetch();
        } catch (e) {
            toastError(e);
        }
    }

    async function clearTask(task, downstream) {
        const ok = await confirm(downstream ? 'Clear the task and its downstream?'
                                            : 'Clear the task?',
                                 `${task}${downstream ? ' and every task downstream of it' : ''} ` +
                                 `will run again in run ${run}.`,
                                 downstream ? 'Clear + downstream' : 'Clear');
        if (!ok) return;
        try {
            const path = `/dags/${enc(dag)}/runs/${enc(run)}/tasks/${enc(task)}/clear`;
            const res = await api('POST', path, {downstream});
            if (res && res.requested) {
                toast(`Clear of ${(res.cleared || [task]).join(', ')} requested: it runs again ` +
                      'once the tasks running now have ended');
            } else {
                const n = res && (res.task_instances || (res.cleared && res.cleared.length));
                toast(`Cleared ${n || ''} task instance${n === 1 ? '' : 's'}`.replace('  ', ' '));
            }
            refetch();
        } catch (e) {
            toastError(e);
        }
    }

    tbody.addEventListener('click', (ev) => {
        const b = ev.target.closest('button[data-act]');
        if (!b) return;
        const task = b.closest('tr').getAttribute('data-task');
        clearTask(task, b.getAttribute('data-act') === 'clear-down');
    });

    /* ---- live ---- */

    const stop = subscribe({dag, run}, (ev) => {
        if (ev.run_id !== run || !runInfo) return;
        if (ev.type === 'run') {
            const was = runEnded();
            runInfo.state = ev.state;
            if (ev.state === 'running' && !runInfo.started_at) runInfo.started_at = ev.at;
            if (isEnded(ev.state)) runInfo.ended_at = ev.at;
            else if (was) runInfo.ended_at = null;
            redraw();
            refetch();
            return;
        }
        const ti = byId.get(ev.task_id);
        if (!ti) {
            refetch(); /* a new instance (mapped task expanded) */
            return;
        }
        ti.state = ev.state;
        if (ev.try) ti.try_number = ev.try;
        if (ev.state === 'scheduled') ti.scheduled_at = ev.at;
        else if (ev.state === 'queued') {
            ti.queued_at = ev.at;
            ti.started_at = ti.ended_at = null;
            ti.duration_s = null;
        } else if (ev.state === 'running') {
            ti.started_at = ev.at;
            ti.ended_at = null;
        } else if (isEnded(ev.state) || ev.state === 'up_for_retry') {
            ti.ended_at = ev.at;
            if (ti.started_at) ti.duration_s = (fmt.ms(ev.at) - fmt.ms(ti.started_at)) / 1000;
        } else if (ev.state === 'none') {
            ti.queued_at = ti.started_at = ti.ended_at = ti.scheduled_at = null;
        }
        dirty.add(ev.task_id);
        redraw();
        refetch();
    }, load);

    /* the "now" line and running bars grow while the run runs */
    const tick = setInterval(() => {
        if (runInfo && !runEnded() && tis.some((t) => t.started_at && !t.ended_at)) drawGantt();
    }, 1000);
    let lastW = 0;
    const onResize = throttle(() => {
        const w = gantt.el.clientWidth;
        if (runInfo && w !== lastW) {
            lastW = w;
            drawGantt();
        }
    }, 200);
    window.addEventListener('resize', onResize);

    load();

    return {
        unmount() {
            alive = false;
            ctl.abort();
            stop();
            refetch.cancel();
            redraw.cancel();
            onResize.cancel();
            clearInterval(tick);
            window.removeEventListener('resize', onResize);
        },
    };
}

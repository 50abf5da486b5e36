/*
 * page_run.js - one run (#/dags/DAG/runs/RUN): its state, a Gantt chart with
 * the critical path highlighted and spelled out, the table of its task
 * instances, and the operator actions (cancel the run while it has not
 * ended; clear a task, or a task and its downstream, once that task has
 * ended: in a run still running the scheduler applies it once the tries
 * running now have ended, and the server says so with 202).
 *
 * Key ideas:
 * - Three parts: run_data.js holds and fetches what is shown (run, task
 *   instances, graph edges, tries), run_render.js turns it into DOM with h(),
 *   run_live.js follows the event stream. This file puts them together: the
 *   skeleton, what each draw step replaces, and the actions.
 * - Drawing is by step (head, critical path, table, Gantt) so a live update
 *   touches only what changed: the actions are redrawn only when the run
 *   ends or restarts (keyboard focus stays on them), table rows one by one.
 * - Every action asks first (confirm dialog) and reports in a toast.
 */

import {enc, get, isOperator, link} from './api.js';
import {h, replace} from './dom.js';
import {throttle} from './events.js';
import {createGantt} from './gantt.js';
import {RunData} from './run_data.js';
import {liveRun} from './run_live.js';
import {openMarkRun} from './ops_dialogs.js';
import * as R from './run_render.js';
import {badge, setBadge, confirm, toast, toastError, loading, errorPanel} from './ui.js';

export function mount(root, route) {
    const {dag, run} = route.params;
    document.title = `${run} · ${dag} · baram`;
    const op = isOperator();
    const ctl = new AbortController();
    const data = new RunData(dag, run, ctl.signal);

    /* ---- skeleton ---- */
    const stateBadge = badge('none', {testid: 'run-state'});
    const actions = h('div', {class: 'page-actions'});
    const meta = h('dl', {class: 'facts'});
    const critText = h('p', {class: 'critical-path', testid: 'critical-path'}, '—');
    const gantt = createGantt({href: (ti) => link.task(dag, run, ti.task_id)});
    const table = R.createTiTable({op, href: (ti) => link.task(dag, run, ti.task_id),
                                   onClear: clearTask});
    const count = h('span', {class: 'muted small'});
    const body = h('div', {class: 'run-body'}, loading());
    const dlBody = h('tbody');
    const dlCount = h('span', {class: 'muted small'});
    const dlCard = R.deliveriesCard(dlBody, dlCount);
    let actionsFor = null; /* whether the actions were drawn for an ended run */

    replace(root, R.crumbs(dag, run),
            h('div', {class: 'page-head'}, h('div', null, R.title(run), stateBadge), actions),
            body);

    /* ---- drawing ---- */

    function drawHead() {
        setBadge(stateBadge, data.run.state);
        replace(meta, R.facts(data.run, Date.now()));
        if (actionsFor === data.ended) return;
        actionsFor = data.ended;
        replace(actions, R.actions(dag, run, op && !data.ended ? cancelRun : null),
                op ? h('button', {type: 'button', class: 'btn', testid: 'run-mark',
                                  onclick: () => openMarkRun(dag, run, () => live.refresh())},
                       'Mark run…') : null);
    }

    function drawCritical() {
        const crit = data.critical();
        replace(critText, R.criticalText(crit, data.ended || data.tis.some((t) => t.ended_at)));
        table.setCrit(data.critSet);
    }

    function drawTable() {
        count.textContent = R.countText(data.tis.length);
        table.draw(data.tis, {clearable: data.ended, critSet: data.critSet,
                              queued: data.run.state === 'queued'});
    }

    function drawGantt() {
        gantt.draw(data.tis, data.critSet, Date.now(), data.tries());
    }

    function drawAll() {
        drawHead();
        drawCritical();
        drawTable();
        drawGantt();
        data.loadTries(drawGantt).catch((e) => {
            if (!ctl.signal.aborted && e.name !== 'AbortError') toastError(e);
        });
    }

    /* notify: the run's hook notifications, fetched again (throttled) as the run changes */
    async function loadDeliveries() {
        try {
            const res = await get(`/dags/${enc(dag)}/runs/${enc(run)}/deliveries`,
                                  {signal: ctl.signal});
            const list = res.deliveries || [];
            replace(dlBody, ...R.deliveryRows(list));
            dlCount.textContent = list.length === 1 ? '1 delivery' : `${list.length} deliveries`;
            /* one still being sent (or a run whose end hooks have not reported yet): look again */
            if (!ctl.signal.aborted && (list.some((d) => d.state === 'pending') || !data.ended))
                setTimeout(deliveriesSoon, 2000);
        } catch (e) {
            if (!ctl.signal.aborted && e.name !== 'AbortError') toastError(e);
        }
    }
    const deliveriesSoon = throttle(loadDeliveries, 1000);

    /* a live change: the rows of the instances in ids, the rest whole */
    function redraw(ids) {
        deliveriesSoon();
        drawHead();
        drawCritical();
        if (table.clearable !== data.ended) drawTable();
        else table.update(ids, data.byId);
        drawGantt();
    }

    async function load() {
        try {
            await data.load();
            if (ctl.signal.aborted) return;
            if (!body.contains(meta))
                replace(body, meta, R.timelineCard(critText, gantt.el), R.tisCard(count, table.el),
                        dlCard);
            drawAll();
            loadDeliveries();
        } catch (e) {
            if (ctl.signal.aborted || e.name === 'AbortError') return;
            if (!data.run) replace(body, errorPanel(e, load));
            else toastError(e);
        }
    }

    /* ---- actions ---- */

    async function cancelRun() {
        const ok = await confirm('Cancel this run?',
                                 `Run ${run} of ${dag} stops: running tasks are stopped, ` +
                                 'waiting ones will not start.', 'Cancel run', true);
        if (!ok) return;
        try {
            const res = await data.cancel();
            toast(res && res.state === 'cancelled' ? 'Run cancelled' : 'Cancel requested');
            live.refresh();
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
            const res = await data.clear(task, downstream);
            if (res && res.requested) {
                toast(`Clear of ${(res.cleared || [task]).join(', ')} requested: it runs again ` +
                      'once the tasks running now have ended');
            } else {
                const n = res && (res.task_instances || (res.cleared && res.cleared.length));
                toast(`Cleared ${n || ''} task instance${n === 1 ? '' : 's'}`.replace('  ', ' '));
            }
            live.refresh();
        } catch (e) {
            toastError(e);
        }
    }

    /* ---- live ---- */

    const live = liveRun(data, {redraw, drawAll, drawGantt, reload: load});
    let lastW = 0;
    const onResize = throttle(() => {
        const w = gantt.el.clientWidth;
        if (data.run && w !== lastW) {
            lastW = w;
            drawGantt();
        }
    }, 200);
    window.addEventListener('resize', onResize);

    load();

    return {
        unmount() {
            ctl.abort();
            live.stop();
            onResize.cancel();
            deliveriesSoon.cancel();
            window.removeEventListener('resize', onResize);
        },
    };
}

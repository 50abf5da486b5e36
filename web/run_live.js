/*
 * run_live.js - keeps the run page current: the /api/v1/events subscription
 * of one run updates its RunData (run_data.js) and has the page redraw what
 * changed.
 *
 * Key ideas:
 * - An event changes the data at once; the redraw (head, critical path, the
 *   changed table rows, the Gantt) runs at most every REDRAW_MS, and a full
 *   refresh of the instances (exit codes, durations, new mapped instances) at
 *   most every REFRESH_MS while events keep coming; both wait longer above BIG
 *   instances. Never a request per event.
 * - While an instance runs, the Gantt's "now" line and running bars move once
 *   a second.
 * - The page is the `view`: {redraw(changedIds), drawAll(), drawGantt(), reload()}.
 */

import {subscribe, throttle} from './events.js';
import {toastError} from './ui.js';

const REDRAW_MS = 400;
const BIG_REDRAW_MS = 1500;
const BIG = 500;
const REFRESH_MS = 3000; /* x3 above BIG */

/* Starts following the run; returns {refresh(), stop()}. */
export function liveRun(data, view) {
    const aborted = () => data.signal.aborted;

    const refresh = throttle(async () => {
        try {
            await data.refresh();
            if (aborted()) return;
            view.drawAll();
        } catch (e) {
            if (!aborted() && e.name !== 'AbortError') toastError(e);
        }
    }, () => (data.tis.length > BIG ? REFRESH_MS * 3 : REFRESH_MS));

    let dirty = new Set();
    const redraw = throttle(() => {
        if (aborted() || !data.run) return;
        const ids = dirty;
        dirty = new Set();
        view.redraw(ids);
    }, () => (data.tis.length > BIG ? BIG_REDRAW_MS : REDRAW_MS));

    const stop = subscribe({dag: data.dag, run: data.runId}, (ev) => {
        if (ev.run_id !== data.runId || !data.run) return;
        if (ev.type === 'run') {
            data.applyRun(ev);
        } else if (data.applyTi(ev)) {
            dirty.add(ev.task_id);
        } else {
            refresh(); /* a new instance (mapped task expanded) */
            return;
        }
        redraw();
        refresh();
    }, view.reload);

    const tick = setInterval(() => {
        if (data.growing) view.drawGantt();
    }, 1000);

    return {
        refresh,
        stop() {
            stop();
            refresh.cancel();
            redraw.cancel();
            clearInterval(tick);
        },
    };
}

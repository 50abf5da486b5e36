/*
 * dag_live.js - keeps the DAG page current: the /api/v1/events subscription
 * of one DAG updates its DagData (dag_data.js) and has the page redraw what
 * changed.
 *
 * Key ideas:
 * - Task-instance events update the run's states at once and are coalesced
 *   into one view.tasksChanged() per frame (at most one per setGap() ms: a
 *   change to a huge SVG repaints all of it).
 * - Run events recolour that run (view.runChanged); a run we do not know
 *   triggers one throttled reload of the run list, never one per event.
 * - Every SETTLE_MS while events flow, the runs they touched are loaded again
 *   once (one GET each) and redrawn (view.runReloaded): whatever an event
 *   race got wrong is right again within seconds.
 * - The page is the `view`: {tasksChanged(Map), runChanged(run), runsChanged(),
 *   runReloaded(runId, rs), reload()}.
 */

import {PARKED} from './dag_data.js';
import {subscribe, coalesce, throttle} from './events.js';

const SETTLE_MS = 4000;
const RUNS_MS = 1500;

/* Starts following the DAG; returns {refetchRuns(), setGap(ms), stop()}. */
export function liveDag(data, view) {
    const aborted = () => data.signal.aborted;

    const refetchRuns = throttle(async () => {
        try {
            await data.loadRuns();
        } catch (e) {
            return;
        }
        if (!aborted()) view.runsChanged();
    }, RUNS_MS);

    /* key run \n task -> {run, task} */
    const flush = coalesce((changes) => view.tasksChanged(changes));

    const settling = new Set();
    const settle = throttle(async () => {
        const ids = [...settling];
        settling.clear();
        for (const id of ids) {
            const p = data.reloadRun(id);
            if (!p) continue;
            try {
                const rs = await p;
                if (aborted()) return;
                view.runReloaded(id, rs);
            } catch (e) {
                return;
            }
        }
    }, SETTLE_MS);

    const stop = subscribe({dag: data.dag}, (ev) => {
        if (ev.type === 'run') {
            const r = data.applyRun(ev);
            if (r) view.runChanged(r);
            else refetchRuns();
            return;
        }
        if (ev.type !== 'task_instance' || !ev.task_id) return;
        const task = data.applyTi(ev);
        if (task === PARKED) return; /* applied once the snapshot is in */
        if (task === null) {
            if (!data.run(ev.run_id)) refetchRuns();
            return;
        }
        flush.add(ev.run_id + '\n' + task, {run: ev.run_id, task});
        settling.add(ev.run_id);
        settle();
    }, () => {
        data.reset();
        view.reload();
    });

    return {
        refetchRuns,
        setGap: flush.setGap,
        stop() {
            stop();
            refetchRuns.cancel();
            settle.cancel();
        },
    };
}

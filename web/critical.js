/*
 * critical.js - the critical path of a run: the chain of task instances that
 * decided when the run ended.
 *
 * Rule: start at the task instance that ended last; from there, repeatedly
 * step back to the instance, among all instances of the task's upstream
 * tasks (graph edges), that ended last; stop when there is none. Mapped
 * tasks take part with each of their instances, so the chain goes through the
 * slowest one. The length is from the start of the first instance on the
 * chain (started_at, else queued_at) to the end of the last one.
 *
 * Pure functions over plain data; no DOM.
 */

import {ms} from './fmt.js';

/*
 * criticalPath(tis, edges) -> {ids: [task_id ...] first to last, length_s}
 * tis: [{task_id, task, started_at, queued_at, ended_at}], edges: [{from, to}].
 */
export function criticalPath(tis, edges) {
    const byTask = new Map(); /* task name -> [ti] */
    for (const ti of tis) {
        const t = ti.task || ti.task_id;
        if (!byTask.has(t)) byTask.set(t, []);
        byTask.get(t).push(ti);
    }
    const ups = new Map(); /* task -> [upstream task] */
    for (const e of edges || []) {
        if (!ups.has(e.to)) ups.set(e.to, []);
        ups.get(e.to).push(e.from);
    }
    const endOf = (ti) => ms(ti.ended_at);

    let cur = null;
    for (const ti of tis)
        if (!isNaN(endOf(ti)) && (!cur || endOf(ti) > endOf(cur))) cur = ti;
    if (!cur) return {ids: [], length_s: null};

    const chain = [];
    const seen = new Set();
    while (cur && !seen.has(cur.task_id)) {
        seen.add(cur.task_id);
        chain.push(cur);
        let best = null;
        for (const up of ups.get(cur.task || cur.task_id) || [])
            for (const ti of byTask.get(up) || [])
                if (!isNaN(endOf(ti)) && (!best || endOf(ti) > endOf(best))) best = ti;
        cur = best;
    }
    chain.reverse();
    const first = chain[0], last = chain[chain.length - 1];
    let start = ms(first.started_at);
    if (isNaN(start)) start = ms(first.queued_at);
    const length = isNaN(start) ? null : Math.max(0, (endOf(last) - start) / 1000);
    return {ids: chain.map((ti) => ti.task_id), length_s: length};
}

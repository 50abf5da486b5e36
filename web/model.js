/*
 * model.js - the shared data helpers of the DAG, run and task pages: loading
 * all task instances of a run, naming (task "process" vs. instance
 * "process[3]"), and folding the instances of a mapped task into one state.
 *
 * Key idea: a run's states are kept as Map task_id -> state (instances);
 * aggregate() turns that into Map task -> worst state for the graph and the
 * grid. Live events only carry task_id, so taskOf() strips the "[i]".
 */

import {get, getAll, enc} from './api.js';
import {worst} from './states.js';

/* "process[3]" -> "process"; "load" -> "load". */
export function taskOf(taskId) {
    const m = /^(.*)\[(\d+)\]$/.exec(taskId);
    return m ? m[1] : taskId;
}

/*
 * The states of a run's task instances from GET /dags/{dag}/runs/{run}, whose
 * "tasks" map (task_id -> {state, ...}) is about half the size of the full
 * instance list: what the graph and the grid need, and nothing more.
 */
export async function loadRunStates(dag, run, opts) {
    const r = await get(`/dags/${enc(dag)}/runs/${enc(run)}`, opts);
    const rs = new RunStates();
    const tasks = (r && r.tasks) || {};
    for (const id in tasks) rs.set(id, tasks[id] && tasks[id].state, tasks[id] && tasks[id].tries);
    rs.run = r;
    return rs;
}

/* Every task instance of a run (all pages of GET .../tasks). */
export function loadTis(dag, run, opts) {
    return getAll(`/dags/${enc(dag)}/runs/${enc(run)}/tasks`, 'tasks', opts);
}

/*
 * The states of one run's task instances, indexed by task so that the state
 * of a (mapped) task can be recomputed from its own instances only.
 */
export class RunStates {
    constructor(tis) {
        this.inst = new Map();   /* task_id -> state */
        this.tries = new Map();  /* task_id -> try number of that state */
        this.byTask = new Map(); /* task -> [task_id] */
        for (const ti of tis || []) this.set(ti.task_id, ti.state, ti.try_number);
    }

    /* Records an instance's state; returns its task's name. */
    set(taskId, state, tryNumber) {
        const t = taskOf(taskId);
        if (!this.inst.has(taskId)) {
            if (!this.byTask.has(t)) this.byTask.set(t, []);
            this.byTask.get(t).push(taskId);
        }
        this.inst.set(taskId, state);
        if (tryNumber) this.tries.set(taskId, tryNumber);
        return t;
    }

    /*
     * Applies events that arrived while this snapshot was loading: an event
     * older than what the snapshot shows (an earlier try, or an earlier step
     * of the same try) is dropped, so a late 'running' never hides 'success'.
     */
    merge(events) {
        for (const ev of events) {
            const have = this.inst.get(ev.task_id);
            const haveTry = this.tries.get(ev.task_id) || 0;
            const evTry = ev.try || 0;
            if (have === undefined || evTry > haveTry ||
                (evTry === haveTry && rank(ev.state) >= rank(have)))
                this.set(ev.task_id, ev.state, evTry);
        }
    }

    /* The task's state: the worst over its instances, 'none' without any. */
    task(t) {
        let st;
        for (const id of this.byTask.get(t) || []) st = worst(st, this.inst.get(id));
        return st === undefined ? 'none' : st;
    }

    /* Map task -> state for every task that has instances. */
    all() {
        const out = new Map();
        for (const t of this.byTask.keys()) out.set(t, this.task(t));
        return out;
    }

    /* Map task -> number of instances, for the mapped tasks (ids like "task[3]"). */
    counts() {
        const out = new Map();
        for (const [t, ids] of this.byTask) if (!ids.includes(t)) out.set(t, ids.length);
        return out;
    }

    /* The instance to open for a task: itself, or its first mapped instance. */
    instance(t) {
        const ids = this.byTask.get(t);
        if (!ids || !ids.length) return null;
        if (ids.includes(t)) return t;
        return ids.slice().sort((a, b) => idx(a) - idx(b))[0];
    }
}

/* How far along a try is: none < scheduled < queued < running < retry/ended. */
function rank(state) {
    switch (state) {
    case 'none': return 0;
    case 'scheduled': return 1;
    case 'queued': return 2;
    case 'running': return 3;
    default: return 4;
    }
}

function idx(id) {
    const m = /\[(\d+)\]$/.exec(id);
    return m ? Number(m[1]) : -1;
}

/*
 * A /graph-shaped layout built here from GET /dags/{dag}'s tasks (name,
 * upstream), for when the server has no stored version to answer /graph
 * with: layer = longest path from a root, order = one barycenter pass.
 */
export function layoutFromTasks(dagId, tasks) {
    const byName = new Map(tasks.map((t) => [t.name, t]));
    const layer = new Map();
    const depth = (name, seen) => {
        if (layer.has(name)) return layer.get(name);
        if (seen.has(name)) return 0; /* a cycle cannot load; be safe anyway */
        seen.add(name);
        let l = 0;
        for (const up of (byName.get(name) || {}).upstream || [])
            if (byName.has(up)) l = Math.max(l, depth(up, seen) + 1);
        layer.set(name, l);
        return l;
    };
    for (const t of tasks) depth(t.name, new Set());
    const layers = [];
    for (const t of tasks) (layers[layer.get(t.name)] = layers[layer.get(t.name)] || []).push(t);
    const order = new Map();
    for (const col of layers) {
        if (!col) continue;
        const key = (t) => {
            const ups = (t.upstream || []).filter((u) => order.has(u));
            return ups.length ? ups.reduce((a, u) => a + order.get(u), 0) / ups.length : 0;
        };
        col.sort((a, b) => key(a) - key(b));
        col.forEach((t, i) => order.set(t.name, i));
    }
    const edges = [];
    for (const t of tasks)
        for (const up of t.upstream || []) if (byName.has(up)) edges.push({from: up, to: t.name});
    return {
        dag_id: dagId, layers: layers.length, edges,
        nodes: tasks.map((t) => ({id: t.name, kind: t.kind || 'run', mapped: !!t.mapped,
                                  layer: layer.get(t.name), order: order.get(t.name)})),
    };
}

/* The graph's nodes in reading order: by layer, then by row. */
export function graphOrder(graph) {
    return (graph.nodes || []).slice().sort((a, b) => a.layer - b.layer || a.order - b.order);
}

/* Runs in ascending run-id order for "oldest first" displays from newest-first lists. */
export function oldestFirst(runs) {
    return runs.slice().reverse();
}

/* Run with a bounded number of fetches in flight. */
export async function pool(items, n, fn) {
    const out = new Array(items.length);
    let next = 0;
    async function worker() {
        while (next < items.length) {
            const i = next++;
            out[i] = await fn(items[i], i);
        }
    }
    await Promise.all(Array.from({length: Math.min(n, items.length)}, worker));
    return out;
}

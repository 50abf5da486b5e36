/*
 * dag_data.js - what the DAG page shows, and nothing about how: the DAG, its
 * /graph, its GRID_RUNS recent runs, and the task states of the runs shown
 * (run_id -> RunStates, see model.js), each run loaded once so that
 * switching views or runs is instant.
 *
 * Key ideas:
 * - Events that arrive while a run's states load are parked and merged once
 *   the snapshot is in (older ones dropped, see RunStates.merge), so a race
 *   never leaves a task in a stale state.
 * - The grid's columns come in one request (GET /dags/{dag}/grid) when
 *   several are missing; a column the answer lacks loads on its own.
 * - When /graph has no stored version to answer with (404), the layout is
 *   made here from the DAG's tasks, if it lists them.
 * - Methods throw what the API throws (AbortError included).
 */

import {get, enc} from './api.js';
import {RunStates, loadRunStates, layoutFromTasks} from './model.js';

export const GRID_RUNS = 25;

/* What applyTi() returns for an event kept until its run's states are in. */
export const PARKED = Symbol('parked');

export class DagData {
    constructor(dag, signal) {
        this.dag = dag;
        this.signal = signal;
        this.detail = null;            /* GET /dags/{dag} */
        this.graph = null;             /* GET /dags/{dag}/graph, or a layout made here */
        this.graphMissing = null;      /* the 404 when there was no /graph */
        this.runs = [];                /* newest first */
        this.older = [];               /* older runs shown on request (addRun), kept by loadRuns */
        this.states = new Map();       /* run_id -> RunStates */
        this.loadingRuns = new Map();  /* run_id -> Promise */
        this.parked = new Map();       /* run_id -> [event] seen while it was loading */
        this.runGraphs = new Map();    /* run_id -> Promise of its version's /graph (or null) */
        this.versions = null;          /* Promise of GET /dags/{dag}/versions */
        this.sources = new Map();      /* hash -> Promise of a version's source */
    }

    get path() {
        return `/dags/${enc(this.dag)}`;
    }

    /*
     * The DAG, its graph and its runs; pick(runs) names the run whose states
     * load meanwhile (or null).
     */
    async load(pick) {
        const opts = {signal: this.signal};
        const runsThenStates = this.loadRuns().then(() => {
            const sel = pick(this.runs);
            if (sel) this.runState(sel).catch(() => {});
        });
        this.graphMissing = null;
        const [d, g] = await Promise.all([
            get(this.path, opts),
            get(`${this.path}/graph`, opts).catch((e) => {
                if (e.status !== 404) throw e;
                this.graphMissing = e;
                return null;
            }),
            runsThenStates,
        ]);
        this.detail = d;
        /* the server stores a DAG's version with its first run: until then, lay out
           the tasks here if the DAG says what they are */
        this.graph = g || (d && Array.isArray(d.tasks) && d.tasks.length
            ? layoutFromTasks(this.dag, d.tasks) : {dag_id: this.dag, nodes: [], edges: []});
    }

    async loadRuns() {
        const r = await get(`${this.path}/runs?limit=${GRID_RUNS}`, {signal: this.signal});
        const runs = r.runs || [];
        /* a refetch that lands after addRun must not drop the older run it added */
        const have = new Set(runs.map((x) => x.run_id));
        this.runs = runs.concat(this.older.filter((x) => !have.has(x.run_id)));
    }

    /* The graph of the version runId started with (GET /graph?run=), once per run; null
       when the server has none (the page keeps the DAG's current graph). The page asks only
       for a run whose version (its "hash") is not the one drawn. */
    graphOf(runId) {
        if (!this.runGraphs.has(runId))
            this.runGraphs.set(runId, get(`${this.path}/graph?run=${enc(runId)}`,
                                          {signal: this.signal}).catch((e) => {
                if (e.name === 'AbortError') throw e;
                return null;
            }));
        return this.runGraphs.get(runId);
    }

    /* The stored versions, newest first ({current, versions}), asked again on each call
       that follows a failed one. */
    loadVersions() {
        if (!this.versions)
            this.versions = get(`${this.path}/versions`, {signal: this.signal}).catch((e) => {
                this.versions = null;
                throw e;
            });
        return this.versions;
    }

    /* A version's source (a version never changes: fetched once). */
    source(hash) {
        if (!this.sources.has(hash))
            this.sources.set(hash, get(`${this.path}/versions/${enc(hash)}`,
                                       {signal: this.signal}).then((v) => v.source, (e) => {
                this.sources.delete(hash);
                throw e;
            }));
        return this.sources.get(hash);
    }

    run(runId) {
        return this.runs.find((r) => r.run_id === runId);
    }

    /* An older run, not in the recent list, added to it so it can be shown. */
    async addRun(runId) {
        const r = await get(`${this.path}/runs/${enc(runId)}`, {signal: this.signal});
        this.older.push(r);
        if (!this.run(runId)) this.runs = this.runs.concat([r]);
    }

    /* The states of a run: held, loading, or loaded now (events parked meanwhile). */
    runState(runId) {
        if (this.states.has(runId)) return Promise.resolve(this.states.get(runId));
        if (this.loadingRuns.has(runId)) return this.loadingRuns.get(runId);
        this.parked.set(runId, []);
        const p = loadRunStates(this.dag, runId, {signal: this.signal}).then((rs) => {
            rs.merge(this.parked.get(runId) || []);
            this.parked.delete(runId);
            this.states.set(runId, rs);
            this.loadingRuns.delete(runId);
            return rs;
        }, (e) => {
            this.loadingRuns.delete(runId);
            this.parked.delete(runId);
            throw e;
        });
        this.loadingRuns.set(runId, p);
        return p;
    }

    /* The states of a run loaded again (whatever an event race got wrong);
       null when it is not held or already loading. */
    reloadRun(runId) {
        if (!this.states.has(runId) || this.loadingRuns.has(runId)) return null;
        this.states.delete(runId);
        return this.runState(runId);
    }

    /*
     * The states of every run of list the page does not have yet, in one
     * request (one state letter per task instance and run, about a tenth of
     * the bytes of one request per run); onColumn(runId, rs) for each. Nothing
     * is asked for fewer than two runs; a failure leaves them to runState().
     */
    async loadGrid(list, onColumn) {
        const want = list.filter((r) => !this.states.has(r.run_id) &&
                                        !this.loadingRuns.has(r.run_id)).map((r) => r.run_id);
        if (want.length < 2) return;
        for (const id of want) this.parked.set(id, []);
        try {
            const gr = await get(`${this.path}/grid?limit=${GRID_RUNS}`, {signal: this.signal});
            for (const col of gr.runs || []) {
                if (!this.parked.has(col.run_id) || this.states.has(col.run_id)) continue;
                const rs = new RunStates();
                for (let i = 0; i < gr.tasks.length; i++) {
                    const c = col.states[i];
                    if (c !== '.') rs.set(gr.tasks[i], gr.codes[c], col.tries[i]);
                }
                rs.merge(this.parked.get(col.run_id));
                this.states.set(col.run_id, rs);
                onColumn(col.run_id, rs);
            }
        } catch (e) {
            if (e.name === 'AbortError') throw e;
        } finally {
            for (const id of want) if (!this.loadingRuns.has(id)) this.parked.delete(id);
        }
    }

    /* A run event: the run's new state, or null for a run not in the list. */
    applyRun(ev) {
        const r = this.run(ev.run_id);
        if (r) r.state = ev.state;
        return r || null;
    }

    /*
     * A task-instance event: returns the task it changed (mapped instances
     * fold into their task), PARKED while the run loads, null for a run
     * whose states are not held.
     */
    applyTi(ev) {
        const park = this.parked.get(ev.run_id);
        if (park) {
            park.push(ev);
            return PARKED;
        }
        const rs = this.states.get(ev.run_id);
        return rs ? rs.set(ev.task_id, ev.state, ev.try) : null;
    }

    /* Forgets every state (the event stream lost events: everything loads again). */
    reset() {
        this.states.clear();
    }
}

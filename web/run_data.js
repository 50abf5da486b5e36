/*
 * run_data.js - what the run page shows, and nothing about how: the run, all
 * its task instances, the DAG's graph edges (for the critical path), and the
 * tries of retried instances (for the Gantt).
 *
 * Key ideas:
 * - One RunData per mounted page; every request carries the page's abort
 *   signal, so nothing lands after the page is left.
 * - Live events change the instances in memory (applyTi: state, try and the
 *   timestamp the event's 'at' stands for) so the page redraws without a
 *   refetch per event; refresh() brings the details events lack (exit codes,
 *   durations, new mapped instances).
 * - Retried instances (try_number > 1, the first TRIES_MAX of them) have
 *   their tries fetched, four requests at a time; an instance is fetched
 *   again only when its try or state changed.
 * - Methods throw what the API throws (AbortError included); the page
 *   decides what to show.
 */

import {get, api, enc} from './api.js';
import {criticalPath} from './critical.js';
import * as fmt from './fmt.js';
import {loadTis} from './model.js';
import {isEnded} from './states.js';

const TRIES_MAX = 100; /* retried instances whose tries the Gantt fetches (a request each) */

const tryKey = (ti) => `${ti.try_number}:${ti.state}`;

export class RunData {
    constructor(dag, run, signal) {
        this.dag = dag;
        this.runId = run;
        this.signal = signal;
        this.run = null;           /* GET /dags/{dag}/runs/{run} */
        this.tis = [];
        this.byId = new Map();     /* task_id -> ti */
        this.edges = [];
        this.triesOf = new Map();  /* task_id -> {key: 'try:state', tries: [...]} */
        this.crit = {ids: [], length_s: null};
        this.critSet = new Set();
        this.triesBusy = false;
        this.triesAgain = false;
    }

    get path() {
        return `/dags/${enc(this.dag)}/runs/${enc(this.runId)}`;
    }

    /* Whether the run has ended (false until it is loaded). */
    get ended() {
        return !!this.run && isEnded(this.run.state);
    }

    /* The run, its instances and the graph's edges (a graph that fails to load
       leaves no critical path; the rest works). */
    async load() {
        const opts = {signal: this.signal};
        const [r, list, g] = await Promise.all([
            get(this.path, opts),
            loadTis(this.dag, this.runId, opts),
            /* the edges of the version this run ran, not the file's current one */
            get(`/dags/${enc(this.dag)}/graph?run=${enc(this.runId)}`, opts).catch((e) => {
                if (e.name === 'AbortError') throw e;
                return {edges: []};
            }),
        ]);
        this.edges = g.edges || [];
        this.set(r, list);
    }

    /* The run and its instances again (the edges do not change). */
    async refresh() {
        const opts = {signal: this.signal};
        const [r, list] = await Promise.all([get(this.path, opts),
                                             loadTis(this.dag, this.runId, opts)]);
        this.set(r, list);
    }

    set(run, tis) {
        this.run = run;
        this.tis = tis;
        this.byId.clear();
        for (const ti of tis) this.byId.set(ti.task_id, ti);
    }

    /* Recomputes the critical path (see critical.js) from the instances held. */
    critical() {
        this.crit = criticalPath(this.tis, this.edges);
        this.critSet = new Set(this.crit.ids);
        return this.crit;
    }

    /* Map task_id -> [tries] of the retried instances fetched so far. */
    tries() {
        const out = new Map();
        for (const [id, t] of this.triesOf) out.set(id, t.tries);
        return out;
    }

    /*
     * Fetches the tries of retried instances not known yet or changed since;
     * onRound() runs after each round that completed. A call made while a
     * round runs makes one more round once it is done.
     */
    async loadTries(onRound) {
        if (this.triesBusy) {
            this.triesAgain = true;
            return;
        }
        for (const id of this.triesOf.keys()) { /* gone, or cleared back to a first try */
            const ti = this.byId.get(id);
            if (!ti || (ti.try_number || 0) < 2) this.triesOf.delete(id);
        }
        let room = TRIES_MAX - this.triesOf.size;
        const want = this.tis.filter((ti) => {
            if ((ti.try_number || 0) < 2) return false;
            const known = this.triesOf.get(ti.task_id);
            if (known) return known.key !== tryKey(ti);
            return room-- > 0;
        });
        if (!want.length) return;
        this.triesBusy = true;
        try {
            for (let i = 0; i < want.length && !this.signal.aborted; i += 4) {
                const got = await Promise.all(want.slice(i, i + 4).map((ti) =>
                    get(`${this.path}/tasks/${enc(ti.task_id)}`, {signal: this.signal})
                        .then((d) => [ti, d], (e) => {
                            if (e.name === 'AbortError') throw e;
                            return [ti, null]; /* that row keeps one bar */
                        })));
                for (const [ti, d] of got)
                    if (d && Array.isArray(d.tries))
                        this.triesOf.set(ti.task_id, {key: tryKey(ti), tries: d.tries});
            }
        } finally {
            this.triesBusy = false;
        }
        if (this.signal.aborted) return;
        onRound();
        if (this.triesAgain) {
            this.triesAgain = false;
            await this.loadTries(onRound);
        }
    }

    /* A run event: its state and the times that state stands for. */
    applyRun(ev) {
        const r = this.run, was = this.ended;
        r.state = ev.state;
        if (ev.state === 'running' && !r.started_at) r.started_at = ev.at;
        if (isEnded(ev.state)) r.ended_at = ev.at;
        else if (was) r.ended_at = null;
    }

    /* A task-instance event; returns false for an instance not held (a new
       mapped instance: only a refresh brings it). */
    applyTi(ev) {
        const ti = this.byId.get(ev.task_id);
        if (!ti) return false;
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
        return true;
    }

    /* Whether a bar of the Gantt grows with time (an instance running now). */
    get growing() {
        return !!this.run && !this.ended && this.tis.some((t) => t.started_at && !t.ended_at);
    }

    /* POST .../cancel; resolves to the server's answer. */
    cancel() {
        return api('POST', `${this.path}/cancel`);
    }

    /* POST .../tasks/{task}/clear; resolves to the server's answer. */
    clear(task, downstream) {
        return api('POST', `${this.path}/tasks/${enc(task)}/clear`, {downstream});
    }
}

/*
 * page_dag.js - one DAG (#/dags/DAG?run=RUN&view=graph|grid): its graph
 * coloured by the state of the selected run, or the grid of its recent runs.
 *
 * Key ideas:
 * - Loads the DAG, its /graph (layout done by the server) and its recent runs
 *   once; then the task instances of the selected run (graph view) or of all
 *   GRID_RUNS recent runs (grid view), each run loaded once and kept in
 *   `states` (run_id -> RunStates) so switching views or runs is instant.
 * - Without ?run= the newest run is selected and followed: when a new run
 *   starts it becomes the selected one.
 * - Live: task-instance events update `states` and are coalesced into one
 *   DOM update per frame (only the changed nodes / cells are touched; on a
 *   graph of more than BIG tasks at most one every 500 ms, since any change
 *   repaints the whole SVG); run events recolour the run selector and grid
 *   headers; a run we do not know triggers one throttled refetch of the run
 *   list, never one per event. Events that arrive while a run's states load
 *   are parked and merged (older ones dropped, see RunStates.merge), and
 *   runs that got events are reloaded once every SETTLE_MS at most, so a
 *   race never leaves a node in a stale state.
 * - When /graph has no stored version to answer with (404), the layout is
 *   made here from the DAG's tasks, if it lists them.
 * - The query (view, run) changes through update() without a remount.
 */

import {get, enc, isOperator, link} from './api.js';
import {h, replace} from './dom.js';
import {subscribe, coalesce, throttle} from './events.js';
import * as fmt from './fmt.js';
import {createGraph} from './graph.js';
import {createGrid} from './grid.js';
import {RunStates, loadRunStates, graphOrder, layoutFromTasks, pool} from './model.js';
import {setQuery} from './router.js';
import {glyph, label, norm} from './states.js';
import {openTrigger} from './trigger.js';
import {legend, toastError, loading, errorPanel} from './ui.js';

const GRID_RUNS = 25;
const SETTLE_MS = 4000;
const BIG = 500; /* tasks: above this, live redraws of the graph are spaced out */

export function mount(root, route) {
    const dag = route.params.dag;
    document.title = `${dag} · baram`;
    const op = isOperator();
    const ctl = new AbortController();
    let alive = true;

    let view = route.query.view === 'grid' ? 'grid' : 'graph';
    let wantRun = route.query.run || null; /* explicit selection, else follow the newest */
    let selected = null;                   /* run_id shown on the graph */
    let detail = null, graphData = null;
    let runs = [];                         /* newest first */
    const states = new Map();              /* run_id -> RunStates */
    const loadingRuns = new Map();         /* run_id -> Promise */
    const parked = new Map();              /* run_id -> [event] seen while it was loading */
    let graph = null, grid = null;

    /* ---- skeleton ---- */
    const title = h('h1', {testid: 'dag-title', class: 'dag-title'}, dag);
    const meta = h('div', {class: 'page-meta muted'});
    const actions = h('div', {class: 'page-actions'});
    const runSel = h('select', {id: 'run-selector', testid: 'run-selector', class: 'select'});
    const runLink = h('a', {class: 'btn btn-small', href: '#/'}, 'Open run');
    const tabGraph = h('button', {type: 'button', role: 'tab', class: 'tab', testid: 'view-graph',
                                  id: 'tab-graph', 'aria-controls': 'dag-view'}, 'Graph');
    const tabGrid = h('button', {type: 'button', role: 'tab', class: 'tab', testid: 'view-grid',
                                 id: 'tab-grid', 'aria-controls': 'dag-view'}, 'Grid');
    const content = h('div', {id: 'dag-view', class: 'dag-view', role: 'tabpanel'},
                      loading());
    const runPicker = h('div', {class: 'run-picker'},
                        h('label', {for: 'run-selector'}, 'Run'), runSel, runLink);

    replace(root,
            h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
              h('a', {href: link.dags()}, 'DAGs'), ' / ', h('span', null, dag)),
            h('div', {class: 'page-head'}, h('div', null, title, meta), actions),
            h('div', {class: 'toolbar'},
              h('div', {class: 'tabs', role: 'tablist', 'aria-label': 'View'}, tabGraph, tabGrid),
              runPicker),
            legend(),
            content);

    tabGraph.addEventListener('click', () => switchView('graph'));
    tabGrid.addEventListener('click', () => switchView('grid'));
    for (const [t, other] of [[tabGraph, tabGrid], [tabGrid, tabGraph]])
        t.addEventListener('keydown', (ev) => {
            if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
                ev.preventDefault();
                other.focus();
                other.click();
            }
        });
    runSel.addEventListener('change', () => {
        wantRun = runSel.value || null;
        setQuery({run: wantRun});
        selectRun(wantRun);
    });

    function paintTabs() {
        for (const [t, v] of [[tabGraph, 'graph'], [tabGrid, 'grid']]) {
            t.setAttribute('aria-selected', view === v ? 'true' : 'false');
            t.tabIndex = view === v ? 0 : -1;
            t.classList.toggle('active', view === v);
        }
        content.setAttribute('aria-labelledby', view === 'graph' ? 'tab-graph' : 'tab-grid');
        runPicker.hidden = view !== 'graph';
    }

    function switchView(v) {
        if (v === view) return;
        view = v;
        setQuery({view: v === 'graph' ? null : v});
        paintTabs();
        show();
    }

    /* ---- data ---- */

    function runState(runId) {
        if (states.has(runId)) return Promise.resolve(states.get(runId));
        if (loadingRuns.has(runId)) return loadingRuns.get(runId);
        parked.set(runId, []);
        const p = loadRunStates(dag, runId, {signal: ctl.signal}).then((rs) => {
            rs.merge(parked.get(runId) || []);
            parked.delete(runId);
            states.set(runId, rs);
            loadingRuns.delete(runId);
            return rs;
        }, (e) => {
            loadingRuns.delete(runId);
            parked.delete(runId);
            throw e;
        });
        loadingRuns.set(runId, p);
        return p;
    }

    /*
     * The states of every grid column the page does not have yet, in one request
     * (GET /dags/{dag}/grid: one state letter per task instance and run, about a tenth of the
     * bytes of one request per run). Events of those runs are parked meanwhile and merged as
     * runState() does; a column the answer lacks is left for runState().
     */
    async function loadGridStates(g, list) {
        const want = list.filter((r) => !states.has(r.run_id) && !loadingRuns.has(r.run_id))
            .map((r) => r.run_id);
        if (want.length < 2) return;
        for (const id of want) parked.set(id, []);
        try {
            const gr = await get(`/dags/${enc(dag)}/grid?limit=${GRID_RUNS}`,
                                 {signal: ctl.signal});
            for (const col of gr.runs || []) {
                if (!parked.has(col.run_id) || states.has(col.run_id)) continue;
                const rs = new RunStates();
                for (let i = 0; i < gr.tasks.length; i++) {
                    const c = col.states[i];
                    if (c !== '.') rs.set(gr.tasks[i], gr.codes[c], col.tries[i]);
                }
                rs.merge(parked.get(col.run_id));
                states.set(col.run_id, rs);
                if (alive && grid === g) g.fill(col.run_id, rs.all());
            }
        } catch (e) {
            if (e.name === 'AbortError') throw e; /* else: the columns load one by one */
        } finally {
            for (const id of want) if (!loadingRuns.has(id)) parked.delete(id);
        }
    }

    /* "✓ 2026-11-28 · scheduled · success  (scheduled__2026-...)" */
    function runLabel(r, st) {
        return `${glyph(st)} ${fmt.logical(r.logical_date)} · ${r.type || ''} · ${label(st)}` +
               `  (${r.run_id})`;
    }

    function fillRunSelector() {
        const opts = runs.map((r) => {
            const st = norm(r.state);
            return h('option', {value: r.run_id},
                     runLabel(r, st));
        });
        if (!runs.length) opts.push(h('option', {value: ''}, 'no runs yet'));
        replace(runSel, opts);
        runSel.disabled = !runs.length;
        if (selected) runSel.value = selected;
    }

    async function loadRuns() {
        const r = await get(`/dags/${enc(dag)}/runs?limit=${GRID_RUNS}`, {signal: ctl.signal});
        runs = r.runs || [];
    }

    function drawMeta() {
        const bits = [];
        if (detail && detail.description) bits.push(h('span', null, detail.description));
        bits.push(h('span', null, 'schedule ', h('code', null,
                                                  (detail && detail.schedule) || 'manual')));
        if (graphData) bits.push(h('span', null, `${(graphData.nodes || []).length} tasks`));
        const nr = detail && detail.next_run;
        const due = nr && (nr.due_at || nr.logical_date);
        if (due)
            bits.push(h('span', {title: `logical date ${nr.logical_date || '—'}`},
                        'next run ', fmt.time(due), ' ', h('span', {class: 'small'},
                                                         '(' + fmt.relative(due) + ')')));
        if (detail && detail.paused) bits.push(h('span', {class: 'pill pill-paused'}, 'paused'));
        replace(meta, bits.map((b, i) => [i ? h('span', {class: 'sep', 'aria-hidden': 'true'},
                                                   '·') : null, b]));
        if (op)
            replace(actions, h('button', {type: 'button', class: 'btn btn-primary',
                                          testid: 'dag-trigger', 'aria-label': `trigger ${dag}`,
                                          onclick: () => openTrigger(dag, onTriggered,
                                                                     detail && detail.params)},
                               '▶ Trigger'));
    }

    function onTriggered(run) {
        if (run && run.run_id && !wantRun) selected = null; /* follow the new run */
        refetchRuns();
    }

    /* ---- views ---- */

    function nodeHref(task, node) {
        if (!selected) return null;
        const rs = states.get(selected);
        if (node && node.mapped) {
            const inst = rs && rs.instance(task);
            return inst ? link.task(dag, selected, inst) : link.run(dag, selected);
        }
        return link.task(dag, selected, task);
    }

    async function selectRun(runId) {
        selected = runId || (runs[0] && runs[0].run_id) || null;
        if (selected && !runs.some((r) => r.run_id === selected)) {
            /* an older run, not in the recent list: show it anyway */
            try {
                const r = await get(`/dags/${enc(dag)}/runs/${enc(selected)}`,
                                    {signal: ctl.signal});
                runs = runs.concat([r]);
            } catch (e) {
                toastError(e);
                selected = runs[0] ? runs[0].run_id : null;
            }
        }
        fillRunSelector();
        runLink.hidden = !selected;
        if (selected) runLink.href = link.run(dag, selected);
        if (view !== 'graph' || !graph) return;
        if (!selected) {
            graph.setStates(new Map());
            graph.setCounts(new Map());
            graph.setHrefs();
            return;
        }
        try {
            const want = selected;
            const rs = await runState(want);
            if (!alive || want !== selected || !graph) return;
            graph.setStates(rs.all());
            graph.setCounts(rs.counts());
            graph.setHrefs();
        } catch (e) {
            if (alive) toastError(e);
        }
    }

    async function showGraph() {
        if (!graph) {
            /* wait for the selected run's states so the graph is drawn once, coloured */
            const sel = wantRun || (runs[0] && runs[0].run_id) || null;
            let init = null;
            if (sel) {
                try {
                    init = (await runState(sel)).all();
                } catch (e) {
                    if (e.name === 'AbortError') return;
                    toastError(e);
                }
            }
            if (!alive || view !== 'graph') return;
            if (!graph) {
                selected = sel;
                graph = createGraph(graphData, {href: nodeHref, states: init || new Map()});
            }
        }
        replace(content, graph.el);
        if (!graph.fitted) {
            graph.zoomFit();
            graph.fitted = true;
        }
        selectRun(selected || wantRun);
    }

    /*
     * The grid appears at once with the runs whose states are known; the
     * others load newest first (6 at a time) and fill their columns as they
     * come, so the newest runs show first on a 2,000-task DAG.
     */
    async function showGrid() {
        const old = grid && content.contains(grid.el) ? grid.el : null;
        const list = runs.slice(0, GRID_RUNS).reverse(); /* oldest left */
        const tasks = graphOrder(graphData).map((n) => ({id: n.id, mapped: !!n.mapped}));
        const cells = list.map((r) => (states.has(r.run_id) ? states.get(r.run_id).all() : null));
        const g = createGrid({
            tasks, runs: list, cells,
            href: (t, r) => {
                if (!t.mapped) return link.task(dag, r.run_id, t.id);
                const rs = states.get(r.run_id);
                const inst = rs && rs.instance(t.id);
                return inst ? link.task(dag, r.run_id, inst) : link.run(dag, r.run_id);
            },
            runHref: (r) => link.run(dag, r.run_id),
        });
        grid = g;
        replace(content, list.length ? null
                : h('p', {class: 'panel muted'}, 'No runs yet: the grid fills as runs start.'),
                g.el);
        if (old) {
            g.el.scrollTop = old.scrollTop;
            g.el.scrollLeft = old.scrollLeft;
        } else {
            g.el.scrollLeft = g.el.scrollWidth; /* newest runs in view on narrow screens */
        }
        g.rerender();
        if (list.some((r) => !states.has(r.run_id))) await loadGridStates(g, list);
        const missing = list.filter((r) => !states.has(r.run_id)).reverse(); /* newest first */
        let failed = null;
        await pool(missing, 6, async (r) => {
            try {
                const rs = await runState(r.run_id);
                if (alive && grid === g) g.fill(r.run_id, rs.all());
            } catch (e) {
                failed = failed || e;
            }
        });
        if (failed && alive && failed.name !== 'AbortError') toastError(failed);
    }

    function show() {
        if (!graphData) return;
        (view === 'graph' ? showGraph() : showGrid()).catch((e) => {
            if (!alive || e.name === 'AbortError') return;
            console.error(e);
            replace(content, errorPanel(e, show)); /* never a blank page */
        });
    }

    async function load() {
        try {
            /* the selected run's states load while the graph does */
            const runsThenStates = loadRuns().then(() => {
                const sel = wantRun || (runs[0] && runs[0].run_id);
                if (view === 'graph' && sel) runState(sel).catch(() => {});
            });
            let graphMissing = null;
            const [d, g] = await Promise.all([
                get(`/dags/${enc(dag)}`, {signal: ctl.signal}),
                get(`/dags/${enc(dag)}/graph`, {signal: ctl.signal}).catch((e) => {
                    if (e.status !== 404) throw e;
                    graphMissing = e; /* no stored version yet: see below */
                    return null;
                }),
                runsThenStates,
            ]);
            if (!alive) return;
            detail = d;
            graphData = g;
            if (!graphData) {
                /* the server stores a DAG's version with its first run: until then, lay
                 * out the tasks here if the DAG says what they are, else say why */
                graphData = d && Array.isArray(d.tasks) && d.tasks.length
                    ? layoutFromTasks(dag, d.tasks) : {dag_id: dag, nodes: [], edges: []};
                if (!graphData.nodes.length)
                    content.before(h('p', {class: 'panel muted', role: 'note'},
                                     'The graph of this DAG is not available yet (',
                                     graphMissing.message, '); it appears with its first run.'));
            }
            flush.setGap((graphData.nodes || []).length > BIG ? 500 : 0);
            drawMeta();
            paintTabs();
            show();
        } catch (e) {
            if (!alive || e.name === 'AbortError') return;
            replace(content, errorPanel(e, load));
        }
    }

    /* ---- live ---- */

    const refetchRuns = throttle(async () => {
        try {
            await loadRuns();
        } catch (e) {
            return;
        }
        if (!alive) return;
        if (!wantRun) selected = null; /* follow the newest */
        if (view === 'graph') selectRun(selected || wantRun);
        else showGrid();
    }, 1500);

    const flush = coalesce((changes) => {
        /* changes: key run \n task -> {run, task}; recompute each task's state once */
        const graphChanges = new Map();
        for (const {run, task} of changes.values()) {
            const rs = states.get(run);
            if (!rs) continue;
            const st = rs.task(task);
            if (run === selected) graphChanges.set(task, st);
            if (grid) grid.update(run, task, st);
        }
        if (graph && view === 'graph' && graphChanges.size) {
            graph.update(graphChanges);
            if ((graphData.nodes || []).some((n) => n.mapped && graphChanges.has(n.id))) {
                graph.setCounts(states.get(selected).counts());
                graph.setHrefs(); /* a mapped node links to its first instance */
            }
        }
    });
    /* a change to a huge SVG repaints all of it (~100 ms for 2,000 nodes): batch more */

    /*
     * Every SETTLE_MS while events flow, the runs they touched are reloaded
     * once (one GET each, not one per event) and redrawn: whatever an event
     * race got wrong is right again within seconds.
     */
    const settleRuns = new Set();
    const settleNow = throttle(async () => {
        const ids = [...settleRuns];
        settleRuns.clear();
        for (const id of ids) {
            if (!states.has(id) || loadingRuns.has(id)) continue;
            states.delete(id);
            try {
                const rs = await runState(id);
                if (!alive) return;
                if (grid && grid.hasRun(id)) for (const [t, st] of rs.all()) grid.update(id, t, st);
                if (graph && view === 'graph' && id === selected) {
                    graph.setStates(rs.all());
                    graph.setCounts(rs.counts());
                    graph.setHrefs();
                }
            } catch (e) {
                return;
            }
        }
    }, SETTLE_MS);
    const settle = {add(id) { settleRuns.add(id); settleNow(); }};

    const stop = subscribe({dag}, (ev) => {
        if (ev.type === 'run') {
            const r = runs.find((x) => x.run_id === ev.run_id);
            if (!r) {
                refetchRuns();
                return;
            }
            r.state = ev.state;
            const opt = [...runSel.options].find((o) => o.value === ev.run_id);
            if (opt) {
                const st = norm(ev.state);
                opt.textContent = runLabel(r, st);
            }
            if (grid) grid.updateRun(ev.run_id, ev.state);
            return;
        }
        if (ev.type !== 'task_instance' || !ev.task_id) return;
        if (parked.has(ev.run_id)) {
            parked.get(ev.run_id).push(ev); /* (re)loading: applied once the snapshot is in */
            return;
        }
        const rs = states.get(ev.run_id);
        if (!rs) {
            if (!runs.some((x) => x.run_id === ev.run_id)) refetchRuns();
            return;
        }
        const task = rs.set(ev.task_id, ev.state, ev.try);
        flush.add(ev.run_id + '\n' + task, {run: ev.run_id, task});
        settle.add(ev.run_id);
    }, () => {
        states.clear();
        graph = null;
        grid = null;
        load();
    });

    paintTabs();
    load();

    return {
        update(q) {
            const v = q.view === 'grid' ? 'grid' : 'graph';
            const r = q.run || null;
            if (v !== view) {
                view = v;
                paintTabs();
                show();
            }
            if (r !== wantRun) {
                wantRun = r;
                selectRun(wantRun);
            }
        },
        unmount() {
            alive = false;
            ctl.abort();
            stop();
            refetchRuns.cancel();
        },
    };
}

/*
 * page_dag.js - one DAG (#/dags/DAG?run=RUN&view=graph|grid|code): its graph
 * coloured by the state of the selected run, the grid of its recent runs, or
 * its source (dag_code.js: each stored version, and the diff of two).
 *
 * Key ideas:
 * - Three parts: dag_data.js holds and fetches what is shown (DAG, graph,
 *   runs, the task states of each run, loaded once), dag_render.js turns it
 *   into DOM with h(), dag_live.js follows the event stream. This file puts
 *   them together: the skeleton, the views (graph.js, grid.js) and which run
 *   is selected.
 * - Without ?run= the newest run is selected and followed: when a new run
 *   starts it becomes the selected one.
 * - Live changes touch only the changed nodes / cells; on a graph of more
 *   than BIG tasks at most one update every 500 ms.
 * - The query (view, run) changes through update() without a remount.
 * - The graph of a run is the version it ran (GET /graph?run=): selecting a
 *   run made by an older version of the file redraws the graph from it, so
 *   a task removed since still shows in that run.
 */

import {isOperator, link} from './api.js';
import {h, replace} from './dom.js';
import {createCodeView} from './dag_code.js';
import {DagData, GRID_RUNS} from './dag_data.js';
import {liveDag} from './dag_live.js';
import * as R from './dag_render.js';
import {createGraph} from './graph.js';
import {createGrid} from './grid.js';
import {pool} from './model.js';
import {setQuery} from './router.js';
import {openBackfill, openClear} from './ops_dialogs.js';
import {openTrigger} from './trigger.js';
import {legend, toastError, loading, errorPanel} from './ui.js';

const BIG = 500; /* tasks: above this, live redraws of the graph are spaced out */
const VIEWS = ['graph', 'grid', 'code'];

export function mount(root, route) {
    const dag = route.params.dag;
    document.title = `${dag} · baram`;
    const op = isOperator();
    const ctl = new AbortController();
    const alive = () => !ctl.signal.aborted;
    const data = new DagData(dag, ctl.signal);

    const viewOf = (q) => (VIEWS.includes(q.view) ? q.view : 'graph');
    let view = viewOf(route.query);
    let wantRun = route.query.run || null; /* explicit selection, else follow the newest */
    let selected = null;                   /* run_id shown on the graph */
    let graph = null, grid = null, code = null;
    let drawn = null; /* the /graph object the graph is drawn from */

    /* ---- skeleton ---- */
    const meta = h('div', {class: 'page-meta muted'});
    const actions = h('div', {class: 'page-actions'});
    const runSel = h('select', {id: 'run-selector', testid: 'run-selector', class: 'select'});
    const runLink = h('a', {class: 'btn btn-small', href: '#/'}, 'Open run');
    const tabs = {graph: R.tab('graph', 'Graph'), grid: R.tab('grid', 'Grid'),
                  code: R.tab('code', 'Code')};
    const content = h('div', {id: 'dag-view', class: 'dag-view', role: 'tabpanel'}, loading());
    const runPicker = h('div', {class: 'run-picker'},
                        h('label', {for: 'run-selector'}, 'Run'), runSel, runLink);

    replace(root, R.crumbs(dag),
            h('div', {class: 'page-head'},
              h('div', null, h('h1', {testid: 'dag-title', class: 'dag-title'}, dag), meta),
              actions),
            h('div', {class: 'toolbar'},
              h('div', {class: 'tabs', role: 'tablist', 'aria-label': 'View'}, tabs.graph,
                tabs.grid, tabs.code),
              runPicker),
            legend(), content);

    VIEWS.forEach((v, i) => {
        tabs[v].addEventListener('click', () => switchView(v));
        tabs[v].addEventListener('keydown', (ev) => {
            if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
                ev.preventDefault();
                const other = tabs[VIEWS[(i + (ev.key === 'ArrowLeft' ? VIEWS.length - 1 : 1)) %
                                         VIEWS.length]];
                other.focus();
                other.click();
            }
        });
    });
    runSel.addEventListener('change', () => {
        wantRun = runSel.value || null;
        setQuery({run: wantRun});
        selectRun(wantRun);
    });

    function paintTabs() {
        for (const v of VIEWS) {
            tabs[v].setAttribute('aria-selected', view === v ? 'true' : 'false');
            tabs[v].tabIndex = view === v ? 0 : -1;
            tabs[v].classList.toggle('active', view === v);
        }
        content.setAttribute('aria-labelledby', 'tab-' + view);
        runPicker.hidden = view !== 'graph';
    }

    function setView(v) {
        view = v;
        paintTabs();
        show();
    }

    function switchView(v) {
        if (v === view) return;
        setQuery({view: v === 'graph' ? null : v});
        setView(v);
    }

    function drawMeta() {
        replace(meta, R.meta(data.detail, data.graph));
        const tasks = () => ((data.graph && data.graph.nodes) || []).map((n) => n.id);
        if (op) /* the trigger dialog reads the params' schemas itself (GET /dags/{dag}) */
            replace(actions, R.triggerButton(dag, () => openTrigger(dag, onTriggered)),
                    h('button', {type: 'button', class: 'btn', testid: 'dag-clear',
                                 onclick: () => openClear(dag, tasks(), onTriggered)}, 'Clear…'),
                    h('button', {type: 'button', class: 'btn', testid: 'dag-backfill',
                                 onclick: () => openBackfill(dag, onTriggered)}, 'Backfill…'));
    }

    function onTriggered(run) {
        if (run && run.run_id && !wantRun) selected = null; /* follow the new run */
        live.refetchRuns();
    }

    /* ---- views ---- */

    const newest = () => (data.runs[0] && data.runs[0].run_id) || null;

    /* The instance a task of `runId` links to: a mapped task its first instance. */
    function taskHref(runId, task, mapped) {
        if (!mapped) return link.task(dag, runId, task);
        const rs = data.states.get(runId);
        const inst = rs && rs.instance(task);
        return inst ? link.task(dag, runId, inst) : link.run(dag, runId);
    }

    function paintGraph(rs) {
        graph.setStates(rs ? rs.all() : new Map());
        graph.setCounts(rs ? rs.counts() : new Map());
        graph.setHrefs();
    }

    async function selectRun(runId) {
        selected = runId || newest();
        if (selected && !data.run(selected)) {
            try {
                await data.addRun(selected); /* an older run, not in the recent list */
            } catch (e) {
                toastError(e);
                selected = newest();
            }
        }
        replace(runSel, R.runOptions(data.runs, data.detail && data.detail.timezone));
        runSel.disabled = !data.runs.length;
        if (selected) runSel.value = selected;
        runLink.hidden = !selected;
        if (selected) runLink.href = link.run(dag, selected);
        if (view !== 'graph' || !graph) return;
        if (!selected) {
            paintGraph(null);
            return;
        }
        try {
            const want = selected;
            /* a run of the version drawn needs no other graph (the list says its version) */
            const r = data.run(want);
            const same = r && r.hash && drawn && r.hash === drawn.hash;
            const [rs, g] = await Promise.all([data.runState(want),
                                               same ? null : data.graphOf(want)]);
            if (!alive() || want !== selected || !graph) return;
            if (g && drawn && g.hash && g.hash !== drawn.hash && view === 'graph') {
                drawGraph(g, rs.all()); /* the run's own version */
                return;
            }
            paintGraph(rs);
        } catch (e) {
            if (alive()) toastError(e);
        }
    }

    async function showGraph() {
        if (!graph) {
            /* wait for the selected run's states so the graph is drawn once, coloured */
            const sel = wantRun || newest();
            let init = null;
            if (sel) {
                try {
                    /* an older run picked with ?run= joins the selector's list before the
                       graph shows its states, so the two never disagree */
                    const [rs] = await Promise.all([
                        data.runState(sel),
                        data.run(sel) ? null : data.addRun(sel).catch(() => {})]);
                    init = rs.all();
                } catch (e) {
                    if (e.name === 'AbortError') return;
                    toastError(e);
                }
            }
            if (!alive() || view !== 'graph') return;
            if (!graph) {
                selected = sel;
                makeGraph(data.graph, init || new Map());
            }
        }
        replace(content, graph.el);
        if (!graph.fitted) {
            graph.zoomFit();
            graph.fitted = true;
        }
        selectRun(selected || wantRun);
    }

    /* Makes the graph from g (a /graph object) with these task states; showGraph puts it in
       the page. */
    function makeGraph(g, states) {
        drawn = g;
        graph = createGraph(g, {
            href: (task, node) => (selected ? taskHref(selected, task, node && node.mapped)
                                            : null),
            states});
    }

    /* The graph made again from another version's g, in place of the one shown. */
    function drawGraph(g, states) {
        makeGraph(g, states);
        replace(content, graph.el);
        graph.zoomFit();
        graph.fitted = true;
    }

    async function showCode() {
        if (!code) code = createCodeView(data);
        replace(content, code.el);
        await code.show();
    }

    /*
     * The grid appears at once with the runs whose states are known; the
     * others come in one request (DagData.loadGrid), or else load newest first
     * (6 at a time) and fill their columns as they come, so the newest runs
     * show first on a 2,000-task DAG.
     */
    async function showGrid() {
        const old = grid && content.contains(grid.el) ? grid.el : null;
        const list = data.runs.slice(0, GRID_RUNS).reverse(); /* oldest left */
        const known = (r) => data.states.has(r.run_id);
        const g = createGrid({
            tasks: R.gridTasks(data.graph), runs: list,
            cells: list.map((r) => (known(r) ? data.states.get(r.run_id).all() : null)),
            href: (t, r) => taskHref(r.run_id, t.id, t.mapped),
            runHref: (r) => link.run(dag, r.run_id),
        });
        grid = g;
        replace(content, list.length ? null : R.noRunsNote(), g.el);
        if (old) {
            g.el.scrollTop = old.scrollTop;
            g.el.scrollLeft = old.scrollLeft;
        } else {
            g.el.scrollLeft = g.el.scrollWidth; /* newest runs in view on narrow screens */
        }
        g.rerender();
        const fill = (runId, rs) => {
            if (alive() && grid === g) g.fill(runId, rs.all());
        };
        if (!list.every(known)) await data.loadGrid(list, fill);
        let failed = null;
        await pool(list.filter((r) => !known(r)).reverse(), 6, async (r) => { /* newest first */
            try {
                fill(r.run_id, await data.runState(r.run_id));
            } catch (e) {
                failed = failed || e;
            }
        });
        if (failed && alive() && failed.name !== 'AbortError') toastError(failed);
    }

    function show() {
        if (!data.graph) return;
        (view === 'graph' ? showGraph() : view === 'grid' ? showGrid() : showCode()).catch((e) => {
            if (!alive() || e.name === 'AbortError') return;
            console.error(e);
            replace(content, errorPanel(e, show)); /* never a blank page */
        });
    }

    async function load() {
        try {
            /* the selected run's states load while the graph does */
            await data.load(() => (view === 'graph' ? wantRun || newest() : null));
            if (!alive()) return;
            if (data.graphMissing && !data.graph.nodes.length)
                content.before(R.graphMissingNote(data.graphMissing));
            live.setGap((data.graph.nodes || []).length > BIG ? 500 : 0);
            drawMeta();
            paintTabs();
            show();
        } catch (e) {
            if (!alive() || e.name === 'AbortError') return;
            replace(content, errorPanel(e, load));
        }
    }

    /* ---- live ---- */

    const live = liveDag(data, {
        /* changes: run \n task -> {run, task}; each task's state computed once */
        tasksChanged(changes) {
            const onGraph = new Map();
            for (const {run, task} of changes.values()) {
                const rs = data.states.get(run);
                if (!rs) continue;
                const st = rs.task(task);
                if (run === selected) onGraph.set(task, st);
                if (grid) grid.update(run, task, st);
            }
            if (!graph || view !== 'graph' || !onGraph.size) return;
            graph.update(onGraph);
            if ((data.graph.nodes || []).some((n) => n.mapped && onGraph.has(n.id))) {
                graph.setCounts(data.states.get(selected).counts());
                graph.setHrefs(); /* a mapped node links to its first instance */
            }
        },
        runChanged(r) {
            const opt = [...runSel.options].find((o) => o.value === r.run_id);
            if (opt) opt.textContent = R.runLabel(r, data.detail && data.detail.timezone);
            if (grid) grid.updateRun(r.run_id, r.state);
        },
        runsChanged() {
            if (!wantRun) selected = null; /* follow the newest */
            if (view === 'graph') selectRun(selected || wantRun);
            else showGrid();
        },
        runReloaded(runId, rs) {
            if (grid && grid.hasRun(runId))
                for (const [t, st] of rs.all()) grid.update(runId, t, st);
            if (graph && view === 'graph' && runId === selected) paintGraph(rs);
        },
        reload() {
            graph = null;
            grid = null;
            code = null;
            data.versions = null;
            load();
        },
    });

    paintTabs();
    load();

    return {
        update(q) {
            const v = viewOf(q);
            const r = q.run || null;
            if (v !== view) setView(v);
            if (r !== wantRun) {
                wantRun = r;
                selectRun(wantRun);
            }
        },
        unmount() {
            ctl.abort();
            live.stop();
        },
    };
}

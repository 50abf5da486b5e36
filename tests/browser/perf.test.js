'use strict';
/*
 * perf.test.js - the DAG page draws a 2,000-task DAG (40 layers x 50 tasks,
 * edges between consecutive layers) after one run: the graph and the grid must
 * each be complete in under 1 s, measured in the page with performance.now()
 * from the click to the moment the last graph-node / grid-cell is there
 * (polled every animation frame). A virtualised grid (only the rows in view
 * in the DOM) counts as rendered when its first screen of cells is there, and
 * must then show the last layer's rows within 1 s of a scroll to the end.
 * Each figure is the median of three rounds from a freshly loaded page.
 * The run page of that run shows its 2,000 task instances the same way: only
 * the rows in view are in the DOM, and the last ones within 1 s of a scroll.
 */
const { after, before, test } = require('node:test');
const { assert, finish, launchBrowser, setup } = require('./lib/harness');
const { sel } = require('./lib/page');
const dags = require('./lib/dags');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const OLGA = { name: 'olga', role: 'operator', password: 'olga-pw-1' };
const LAYERS = 40;
const WIDTH = 50;
const N = LAYERS * WIDTH;
const LIMIT_MS = 1000;
const ROUNDS = 3;

/*
 * Runs act (a function source, run in the page) and returns the ms, measured in the page,
 * until done (a function source returning true) holds; done is checked every animation frame.
 */
async function timeTo(page, act, done) {
    await page.evaluate(({ act: a, done: d }) => {
        const actFn = new Function(`return (${a})`)();
        const doneFn = new Function(`return (${d})`)();
        window.__btestT = null;
        const t0 = performance.now();
        const tick = () => {
            if (doneFn())
                window.__btestT = performance.now() - t0;
            else
                requestAnimationFrame(tick);
        };
        actFn();
        requestAnimationFrame(tick);
    }, { act: act.toString(), done: done.toString() });
    const h = await page.waitForFunction(() => window.__btestT, null, { timeout: 30_000 });
    return h.jsonValue();
}

test(`10. performance: a ${N}-task DAG's graph and grid each render in under ${LIMIT_MS} ms; `
    + 'its run page draws the task table by screens',
    { timeout: 180_000 }, async (t) => {
        const { b, s } = await setup(t, browser, { name: 'perf', dags: { 'big.yaml': dags.big(LAYERS, WIDTH) }, users: [OLGA] });
        const p = s.page;
        const runId = await b.trigger('big');
        assert.equal((await b.runEnded('big', runId, 150_000)).state, 'success');

        await s.login(OLGA.name);
        // three rounds, each from a freshly loaded DAG list (no state kept in the page);
        // the median of each figure counts, so one hiccup of a shared machine does not decide
        const rounds = [];
        for (let round = 0; round < ROUNDS; round++) {
            await p.goto(s.url('#/'));
            await p.reload();
            await p.locator(sel('dag-row', { dag: 'big' })).waitFor();
            const graphMs = await timeTo(p,
                () => document.querySelector('[data-testid="dag-row"][data-dag="big"] [data-testid="dag-link"]').click(),
                () => document.querySelectorAll('[data-testid="graph-node"]').length >= 2000);
            assert.equal(await p.locator(sel('graph-node')).count(), N);
            // edges may be drawn one path per edge or bundled per layer (the UI bundles large graphs)
            assert.ok(await p.locator(sel('graph-edge')).count() >= LAYERS - 1, 'too few graph-edges');
            // the nodes show the run's state
            await p.locator(sel('graph-node', { state: 'success' })).nth(N - 1).waitFor();

            // the grid may be virtualised (only the rows in view exist): then "rendered" is the
            // first screen of rows, and then the last rows after a scroll to the end
            const gridMs = await timeTo(p,
                () => document.querySelector('[data-testid="view-grid"]').click(),
                () => document.querySelectorAll('[data-testid="grid-cell"]').length >= 20);
            const cells = await p.locator(sel('grid-cell')).count();
            let endMs = 0;
            if (cells < N) {
                if (round === 0)
                    t.diagnostic(`the grid is virtualised: ${cells} of ${N} cells in the DOM`);
                endMs = await timeTo(p, () => {
                    let el = document.querySelector('[data-testid="grid-cell"]');
                    while (el && !(el.scrollHeight > el.clientHeight
                        && /(auto|scroll)/.test(getComputedStyle(el).overflowY)))
                        el = el.parentElement;
                    (el || document.scrollingElement).scrollTop = 1e9;
                }, () => document.querySelector('[data-testid="grid-cell"][data-task^="t39_"]'));
            }
            const last = await p.locator(sel('grid-cell')).evaluateAll((cs) => cs.map((c) => c.getAttribute('data-task')));
            assert.ok(last.some((x) => x.startsWith(`t${LAYERS - 1}_`)), 'no grid-cell of the last layer');
            assert.ok(await p.locator(sel('grid-cell', { state: 'success' })).count() >= 20);
            rounds.push({ graphMs, gridMs, endMs });
        }
        const median = (k) => rounds.map((r) => r[k]).sort((x, y) => x - y)[Math.floor(ROUNDS / 2)];
        const [graphMs, gridMs, endMs] = [median('graphMs'), median('gridMs'), median('endMs')];
        const all = (k) => rounds.map((r) => r[k].toFixed(0)).join('/');
        const fig = `median of ${ROUNDS}: graph ${graphMs.toFixed(0)} ms (${all('graphMs')}), grid ${
            gridMs.toFixed(0)} ms (${all('gridMs')}), grid's last rows after a scroll ${endMs.toFixed(0)} ms (${
            all('endMs')}); ${N} tasks`;
        t.diagnostic(fig);
        console.log(`# perf: ${fig}`);
        assert.ok(graphMs < LIMIT_MS, `the graph took ${graphMs.toFixed(0)} ms`);
        assert.ok(gridMs < LIMIT_MS, `the grid took ${gridMs.toFixed(0)} ms`);
        assert.ok(endMs < LIMIT_MS, `the grid's last rows took ${endMs.toFixed(0)} ms after the scroll`);

        // the run page of that run: its task table holds only the rows in view, between spacer
        // rows as tall as the rows left out, and shows the last instances after a scroll to the end
        await s.goto(`#/dags/big/runs/${encodeURIComponent(runId)}`);
        await p.locator(sel('task-row')).first().waitFor();
        const rowsIn = async () => p.locator(sel('task-row')).evaluateAll(
            (rs) => rs.map((r) => [r.getAttribute('data-task'), r.getAttribute('data-state')]));
        const first = await rowsIn();
        assert.ok(first.length > 0 && first.length < N, `${first.length} of ${N} task-rows in the DOM`);
        assert.ok(first.every(([, st]) => st === 'success'), JSON.stringify(first.slice(0, 5)));
        assert.ok(first.some(([id]) => id.startsWith('t00_')), 'the first screen lacks the first layer');
        const box = p.locator('.ti-scroll');
        const tall = await box.evaluate((el) => el.scrollHeight);
        assert.ok(tall > N * 20, `the table scrolls over ${tall} px only, for ${N} rows`);
        const tableMs = await timeTo(p, () => { document.querySelector('.ti-scroll').scrollTop = 1e9; },
            () => document.querySelector('[data-testid="task-row"][data-task^="t39_"]'));
        const last = await rowsIn();
        assert.ok(last.length < N, `${last.length} task-rows after the scroll`);
        assert.ok(!last.some(([id]) => id.startsWith('t00_')), 'the first rows are still drawn');
        assert.ok(last.every(([, st]) => st === 'success'), JSON.stringify(last.slice(-5)));
        t.diagnostic(`run page: ${first.length} of ${N} task-rows drawn; the last ones ${
            tableMs.toFixed(0)} ms after a scroll to the end`);
        assert.ok(tableMs < LIMIT_MS, `the run's last task-rows took ${tableMs.toFixed(0)} ms after the scroll`);
        await finish(b, s);
    });

'use strict';
/*
 * pages.test.js - the operator's pages across DAGs (SPEC section 13, issue 13 item 10), on one
 * daemon: 15a the Runs page (#/runs): every DAG's runs newest first, filters by state, DAG and
 * logical dates reflected in the URL, paging, links to the run pages, a new run shown live;
 * 15b the Pools page (#/pools): a running task of a limited pool counted, an admin edits the
 * slots in place; 15c the Import errors page (#/import-errors): a broken DAG file with its line
 * and message, reached from the nav's count and the DAG list's banner.
 *
 * The history the Runs page pages through (55 runs of `ok`, 3 failed ones of `bad`) is written
 * into the runs table by hand: the page must show whatever the database holds, and 58 real
 * runs would cost a minute on this machine.
 */
const { after, before, test } = require('node:test');
const { assert, finish, launchBrowser, setup, until } = require('./lib/harness');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const DAY_MS = 86_400_000;
const JAN1 = Date.UTC(2026, 0, 1);

const DAGS = {
    'ok.yaml': 'dag: ok\ntasks:\n  t:\n    run: echo ok\n',
    'bad.yaml': 'dag: bad\ntasks:\n  t:\n    run: exit 1\n',
    'gpu.yaml': (b) => `dag: gpu\ntasks:\n  train:\n    pool: gpu\n    run: |\n`
        + `      i=0; while [ ! -e '${b.gate('gpu')}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n`,
    'broken.yaml': 'dag: broken\ntasks:\n  t:\n    rnu: echo x\n',
};

/* n finished runs of dag, one a day from day0 (days after 2026-01-01), in state. */
function addRuns(b, dag, state, day0, n) {
    const rows = [];
    for (let i = 0; i < n; i++) {
        const at = JAN1 + (day0 + i) * DAY_MS;
        const id = `scheduled__${new Date(at).toISOString()}`;
        rows.push(`('${id}', '${dag}', '${state}', 'scheduled', ${at}, ${at}, ${at + 1000}, `
            + `${at + 3000}, 'cli')`);
    }
    const q = 'INSERT INTO runs (run_id, dag_id, state, type, logical_at, queued_at, started_at, '
        + `ended_at, owner) VALUES ${rows.join(', ')}`;
    b.sql({ pg: q, sqlite: q });
}

const rowsOf = (p) => p.locator('[data-testid="run-row"]');
const hashOf = (p) => decodeURIComponent(new URL(p.url()).hash);

test('15. the Runs, Pools and Import errors pages', { timeout: 180_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'pages', dags: DAGS });
    const p = s.page;
    addRuns(b, 'ok', 'success', 0, 55);
    addRuns(b, 'bad', 'failed', 100, 3);
    const put = await b.api('PUT', '/pools/gpu', { slots: 2 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const gpuRun = await b.trigger('gpu');
    await s.login('admin');

    await t.test('15a. runs: newest first, filters in the URL, paging, links, live', async () => {
        await s.byId('nav-runs').click();
        await until(() => p.url().includes('#/runs'), 'the #/runs route');
        assert.equal(await s.byId('nav-runs').getAttribute('aria-current'), 'page');
        const all = (await b.api('GET', '/runs?limit=1')).body.total_entries;
        assert.ok(all >= 59, `total ${all}`);
        await until(async () => (await s.byId('runs-count').innerText()) === `${all} runs`,
            `the count "${all} runs"`);
        assert.equal(await rowsOf(p).count(), 50);
        // newest first: the manual gpu run, then the failed runs of April
        assert.equal(await rowsOf(p).nth(0).getAttribute('data-run'), gpuRun);
        assert.equal(await rowsOf(p).nth(1).getAttribute('data-dag'), 'bad');
        assert.equal(await s.byId('runs-prev').isDisabled(), true);
        assert.equal(await s.byId('runs-page').innerText(), `1–50 of ${all}`);

        // the next page, in the URL
        await s.byId('runs-next').click();
        await until(async () => (await rowsOf(p).count()) === all - 50, 'page 2');
        assert.match(hashOf(p), /page=2/);
        assert.equal(await s.byId('runs-next').isDisabled(), true);
        assert.equal(await rowsOf(p).last().getAttribute('data-run'),
            'scheduled__2026-01-01T00:00:00.000Z');

        // state: failed, back on page 1
        await s.byId('runs-filter-state').selectOption('failed');
        await until(async () => (await s.byId('runs-count').innerText()) === '3 runs', '3 failed');
        assert.deepEqual(await p.locator('[data-testid="run-row"]').evaluateAll(
            (trs) => trs.map((tr) => tr.dataset.state + ' ' + tr.dataset.dag)),
        ['failed bad', 'failed bad', 'failed bad']);
        assert.match(hashOf(p), /state=failed/);
        assert.doesNotMatch(hashOf(p), /page=/);

        // failed runs of ok: none, and the page says so
        await s.byId('runs-filter-dag').selectOption('ok');
        await s.byId('runs-empty').waitFor();
        assert.match(hashOf(p), /dag=ok/);
        // every state of ok, in a range of logical dates (both days included)
        await s.byId('runs-filter-state').selectOption('');
        await s.byId('runs-filter-from').fill('2026-01-10');
        await s.byId('runs-filter-to').fill('2026-01-12');
        await until(async () => (await s.byId('runs-count').innerText()) === '3 runs', '3 in range');
        assert.deepEqual(await p.locator('[data-testid="run-row"]').evaluateAll(
            (trs) => trs.map((tr) => tr.dataset.run)),
        ['scheduled__2026-01-12T00:00:00.000Z', 'scheduled__2026-01-11T00:00:00.000Z',
            'scheduled__2026-01-10T00:00:00.000Z']);
        const h = hashOf(p);
        assert.ok(h.includes('from=2026-01-10') && h.includes('to=2026-01-12') && h.includes('dag=ok'), h);

        // a bookmarked filter: the controls show it (the range above also had 3 runs: wait for
        // the rows of bad)
        await s.goto('#/runs?state=failed&dag=bad');
        await until(async () => (await s.byId('runs-count').innerText()) === '3 runs'
            && (await p.locator('[data-testid="run-row"][data-dag="bad"][data-state="failed"]').count()) === 3,
        'the bookmarked filter');
        assert.equal(await s.byId('runs-filter-state').inputValue(), 'failed');
        assert.equal(await s.byId('runs-filter-dag').inputValue(), 'bad');

        // a run's link opens its run page
        const first = rowsOf(p).first();
        const runId = await first.getAttribute('data-run');
        await first.getByTestId('run-link').click();
        await until(() => hashOf(p) === `#/dags/bad/runs/${runId}`, 'the run page route');

        // live: a run triggered while the page is open shows up without a reload
        await s.byId('nav-runs').click();
        await until(async () => (await s.byId('runs-count').innerText()) === `${all} runs`, 'all');
        await p.evaluate(() => { window.__btestNoReload = 1; });
        const okRun = await b.trigger('ok');
        await p.locator(`[data-testid="run-row"][data-run="${okRun}"]`).waitFor({ timeout: 15_000 });
        await p.locator(`[data-testid="run-row"][data-run="${okRun}"][data-state="success"]`)
            .waitFor({ timeout: 15_000 });
        assert.equal(await p.evaluate(() => window.__btestNoReload), 1, 'the page reloaded');
        await s.shot('runs');
    });

    await t.test('15b. pools: a running task counted, an admin edits the slots', async () => {
        await s.byId('nav-pools').click();
        const gpu = p.locator('[data-testid="pool-row"][data-pool="gpu"]');
        await p.locator('[data-testid="pool-row"][data-pool="gpu"][data-running="1"]')
            .waitFor({ timeout: 15_000 });
        assert.equal(await gpu.getByTestId('pool-queued').innerText(), '0');
        assert.equal(await gpu.getByTestId('pool-open').innerText(), '1');
        assert.equal(await gpu.getByTestId('pool-source').innerText(), 'store');
        assert.match(await gpu.getByTestId('pool-bar').getAttribute('aria-label'),
            /^1 running and 0 queued of 2 slots$/);
        const input = gpu.getByTestId('pool-slots-input');
        assert.equal(await input.inputValue(), '2');
        // a refresh (every 2 s) never overwrites what the admin types
        await input.fill('5');
        await p.waitForResponse((r) => r.url().includes('/api/v1/pools?'));
        await p.waitForResponse((r) => r.url().includes('/api/v1/pools?'));
        assert.equal(await input.inputValue(), '5');
        await input.press('Enter');
        await s.byId('toast').filter({ hasText: 'pool gpu: 5 slots' }).waitFor();
        const pools = (await b.api('GET', '/pools')).body.pools;
        assert.equal(pools.find((x) => x.name === 'gpu').slots, 5);
        await until(async () => (await gpu.getByTestId('pool-open').innerText()) === '4', 'open 4');
        b.open('gpu');
        assert.equal((await b.runEnded('gpu', gpuRun)).state, 'success');
        await p.locator('[data-testid="pool-row"][data-pool="gpu"][data-running="0"]')
            .waitFor({ timeout: 15_000 });
    });

    await t.test('15c. import errors: the broken file, from the nav and the banner', async () => {
        const badge = s.byId('nav-import-errors-count');
        await until(async () => (await badge.isVisible()) && (await badge.innerText()) === '1',
            'the nav count 1');
        await s.byId('nav-import-errors').click();
        const file = p.locator('[data-testid="import-file"]');
        await file.first().waitFor();
        assert.equal(await file.count(), 1);
        assert.match(await file.getAttribute('data-path'), /broken\.yaml$/);
        // two errors in the file, each with its line and column
        assert.deepEqual((await file.getByTestId('import-error-where').allInnerTexts())
            .map((w) => w.replace(/^.*\//, '')), ['broken.yaml:3:3', 'broken.yaml:4:5']);
        assert.match((await file.getByTestId('import-error-message').allInnerTexts())[1],
            /unknown key 'rnu' \(did you mean 'run'\?\)/);
        assert.equal(await s.byId('import-errors-count').innerText(), '1 file, 2 errors');
        // the DAG list's banner links here
        await s.byId('nav-dags').click();
        await s.byId('import-errors-link').click();
        await until(() => p.url().endsWith('#/import-errors'), 'the banner link');
        await file.first().waitFor();
        await s.shot('import-errors');
    });
    await finish(b, s);
});

'use strict';
/*
 * workers.test.js - the Workers page (#/workers, SPEC section 12) and the note of a try no
 * worker serves. 14: the registry as the page shows it: the daemon's own rows, the empty
 * state, a dead worker in red, a draining one marked, and changes shown by the 2 s refresh
 * without a reload. 14b (PostgreSQL with workers): a task on a queue nobody listens on stays
 * queued, and the run and task pages say why. 14c: the task page's tries name the worker that
 * ran each (standalone's own on PostgreSQL; none on SQLite).
 *
 * Worker rows of 14 are written into the registry by hand (the table `baram worker` registers
 * in): the page must draw whatever the database holds, and a hand-made row can be made dead or
 * draining at the moment the test wants. The daemon's dead_after is an hour so that no sweep
 * changes them behind the test's back.
 */
const { after, before, test } = require('node:test');
const { execFileSync } = require('node:child_process');
const { BIN, assert, finish, launchBrowser, setup, until } = require('./lib/harness');
const dags = require('./lib/dags');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const LONG = { BARAM_WORKER_DEAD_AFTER: '1h', BARAM_WORKER_HEARTBEAT: '5s' };

/* Registers a worker row: name, queues (comma-separated), slots, state, heartbeat s ago. */
function addWorker(b, name, queues, slots, state, agoS) {
    b.sql({
        pg: `INSERT INTO workers (role, name, hostname, pid, queues, slots, state, heartbeat_at)
             VALUES ('worker', '${name}', 'gpu-host-7', 4711, string_to_array('${queues}', ','),
                     ${slots}, '${state}', now() - make_interval(secs => ${agoS}))`,
        sqlite: `INSERT INTO workers (role, name, hostname, pid, queues, slots, state, started_at,
                 heartbeat_at) VALUES ('worker', '${name}', 'gpu-host-7', 4711, '${queues}',
                 ${slots}, '${state}', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - 60000,
                 CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ${agoS * 1000})`,
    });
}

function setState(b, name, state) {
    const q = `UPDATE workers SET state = '${state}' WHERE name = '${name}'`;
    b.sql({ pg: q, sqlite: q });
}

function row(s, name) {
    return s.page.locator(`[data-testid="worker-row"][data-name="${name}"]`);
}

test('14. workers page: the registry, the empty state, a dead worker in red, a draining one '
    + 'marked, refreshed without a reload', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'workers', dags: { 'flow.yaml': dags.flow },
        env: LONG });
    const p = s.page;
    await s.login('admin');
    await s.byId('nav-workers').click();
    await until(() => p.url().includes('#/workers'), 'the #/workers route');
    assert.equal(await s.byId('nav-workers').getAttribute('aria-current'), 'page');

    // the daemon's own scheduler row, active
    const sched = p.locator('[data-testid="worker-row"][data-role="scheduler"][data-state="active"]');
    await sched.first().waitFor();
    const { body } = await b.api('GET', '/workers');
    const health = await b.api('GET', '/health');
    const onPg = health.body.database.backend === 'postgresql';
    assert.equal(await p.locator('[data-testid="worker-row"]').count(), body.total_entries);

    // no worker registered (standalone on PostgreSQL embeds one): the empty state says what to do
    const nWorkers = body.workers.filter((w) => w.role === 'worker').length;
    if (nWorkers === 0) {
        const text = await s.byId('workers-empty').innerText();
        assert.match(text, onPg ? /^no workers: start one with baram worker$/
                                : /^no workers: on SQLite baram standalone runs the tasks itself/,
                     `empty state: ${text}`);
    } else {
        assert.equal(await s.byId('workers-empty').count(), 0, 'empty state shown beside workers');
    }

    // three workers appear without a reload (the page polls every 2 s)
    const marker = await p.evaluate(() => { window.__btestNoReload = 1; return 1; });
    addWorker(b, 'w-gpu', 'gpu,cpu', 8, 'active', 3);
    addWorker(b, 'w-drain', 'default', 2, 'draining', 1);
    addWorker(b, 'w-dead', 'default', 4, 'dead', 3600);
    await row(s, 'w-dead').waitFor({ timeout: 15_000 });
    await row(s, 'w-gpu').waitFor();
    assert.equal(await p.evaluate(() => window.__btestNoReload), marker, 'the page reloaded');
    assert.equal(await s.byId('workers-empty').count(), 0, 'empty state shown beside workers');

    const gpu = row(s, 'w-gpu');
    assert.equal(await gpu.getAttribute('data-state'), 'active');
    assert.deepEqual(await gpu.locator('[data-testid="worker-queues"] code').allInnerTexts(), ['gpu', 'cpu']);
    assert.equal(await gpu.getByTestId('worker-slots').innerText(), '8');
    assert.equal(await gpu.getByTestId('worker-running').innerText(), '0');
    assert.match(await gpu.getByTestId('worker-heartbeat').innerText(), /^(\d+(\.\d)? s|just now)/);
    assert.match(await gpu.innerText(), /gpu-host-7/);

    // draining: glyph and word, not colour alone
    const drain = row(s, 'w-drain').getByTestId('worker-state');
    assert.equal(await drain.getAttribute('data-state'), 'draining');
    assert.match(await drain.innerText(), /◐\s*draining/);

    // dead: in red (row tint, red text), with the ✗ glyph and the word
    const dead = row(s, 'w-dead');
    assert.equal(await dead.getAttribute('data-state'), 'dead');
    assert.match(await dead.getByTestId('worker-state').innerText(), /✗\s*dead/);
    assert.match(await dead.getByTestId('worker-heartbeat').innerText(), /^(59m|1h 0\dm) /);
    const colours = await dead.evaluate((tr) => ({
        bg: getComputedStyle(tr).backgroundColor,
        fg: getComputedStyle(tr.querySelector('[data-testid="worker-state"]')).color,
    }));
    const rgb = (c) => c.match(/\d+/g).slice(0, 3).map(Number);
    const [br, bgG, bb] = rgb(colours.bg), [fr, fg, fb] = rgb(colours.fg);
    assert.ok(br > bgG + 10 && br > bb + 10, `a dead row's background is not red: ${colours.bg}`);
    assert.ok(fr > 2 * fg && fr > 2 * fb, `a dead worker's state is not red: ${colours.fg}`);

    // a worker declared dead while the page is open turns red at the next refresh
    setState(b, 'w-gpu', 'dead');
    await p.locator('[data-testid="worker-row"][data-name="w-gpu"][data-state="dead"]')
        .waitFor({ timeout: 15_000 });
    // the count in the title: live (active or draining) workers of all, and the schedulers
    const now = (await b.api('GET', '/workers')).body.workers;
    const ws = now.filter((w) => w.role === 'worker');
    const live = ws.filter((w) => w.state === 'active' || w.state === 'draining').length;
    const ns = now.length - ws.length;
    const want = `${live} live worker${live === 1 ? '' : 's'} of ${ws.length}, `
        + `${ns} scheduler${ns === 1 ? '' : 's'}`;
    await until(async () => (await s.byId('workers-count').innerText()) === want,
        `the count "${want}"`, 15_000);
    await s.shot('workers');
    await finish(b, s);
});

test('14b. a task on a queue no worker listens on stays queued, and the run and task pages '
    + 'say why (PostgreSQL)', { timeout: 120_000 }, async (t) => {
    if (process.env.BARAM_TEST_DB !== 'pg') {
        t.skip('PostgreSQL only: on SQLite the scheduler runs every try itself');
        return;
    }
    try {
        execFileSync(BIN, ['worker', '--help'], { stdio: 'ignore' });
    } catch (e) {
        t.skip('this baram has no `baram worker`: its tries do not go through workers');
        return;
    }
    const gpuDag = `dag: gpujob
tasks:
  prep:
    run: echo prepared
  train:
    needs: [prep]
    queue: gpu
    run: echo trained
`;
    const { b, s } = await setup(t, browser, { name: 'gpuqueue', dags: { 'gpujob.yaml': gpuDag } });
    const p = s.page;
    const runId = await b.trigger('gpujob');
    const body = { run_id: runId };
    // the scheduler hands the try to the workers; none takes 'gpu'
    const ti = await until(async () => {
        const r = await b.api('GET', `/dags/gpujob/runs/${encodeURIComponent(body.run_id)}/tasks/train`);
        if (r.status === 404)
            return null; /* no instance yet: prep has not ended */
        assert.equal(r.status, 200, JSON.stringify(r.body));
        if (r.body.state !== 'queued' && r.body.state !== 'none' && r.body.state !== 'scheduled')
            throw Object.assign(new Error(`train went ${r.body.state} with no gpu worker`), { fatal: true });
        return r.body.note ? r.body : null;
    }, 'the note on train');
    assert.equal(ti.note, "no active worker listens on queue 'gpu'");

    await s.login('admin');
    await s.goto(`#/dags/gpujob/runs/${encodeURIComponent(body.run_id)}`);
    const tr = p.locator('[data-testid="task-row"][data-task="train"]');
    await tr.waitFor();
    assert.equal(await tr.getAttribute('data-state'), 'queued');
    assert.equal(await tr.getByTestId('task-note').innerText(), "no active worker listens on queue 'gpu'");
    assert.equal(await p.locator('[data-testid="task-row"][data-task="prep"] [data-testid="task-note"]').count(), 0);
    await tr.getByTestId('task-link').click();
    await s.byId('task-title').waitFor();
    assert.match(await s.byId('task-note').innerText(), /no active worker listens on queue 'gpu'/);
    await finish(b, s);
});

test('14c. the task page names the worker that ran each try (PostgreSQL), none on SQLite',
    { timeout: 120_000 }, async (t) => {
    const oneDag = 'dag: who\ntasks:\n  t:\n    run: echo ran\n';
    const { b, s } = await setup(t, browser, { name: 'trywho', dags: { 'who.yaml': oneDag } });
    const runId = await b.trigger('who');
    const run = await b.runEnded('who', runId);
    assert.equal(run.state, 'success');
    const ti = await b.task('who', runId, 't');
    const onPg = process.env.BARAM_TEST_DB === 'pg';
    if (onPg) /* standalone on PostgreSQL: its in-process worker ran it */
        assert.ok(ti.worker && ti.tries[0].worker === ti.worker, JSON.stringify(ti));
    else
        assert.ok(ti.worker === null && ti.tries[0].worker === null, JSON.stringify(ti));
    await s.login('admin');
    await s.goto(`#/dags/who/runs/${encodeURIComponent(runId)}/tasks/t`);
    const cell = s.page.locator('[data-testid="try-row"][data-try="1"] [data-testid="try-worker"]');
    await cell.waitFor();
    assert.equal(await cell.innerText(), onPg ? ti.worker : '—');
    await finish(b, s);
});

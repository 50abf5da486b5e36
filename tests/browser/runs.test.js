'use strict';
/*
 * runs.test.js - a run's page (Gantt, critical path, clear), a task instance's
 * log with live tail, the grid view, and what a viewer may not see. One real
 * `baram standalone` per test, Chromium headless; runs are made through the
 * REST API where the test is not about triggering.
 */
const { after, before, test } = require('node:test');
const { assert, finish, launchBrowser, Session, setup, until } = require('./lib/harness');
const { hasMarker, recordStates, seenStates, sel, setMarker } = require('./lib/page');
const dags = require('./lib/dags');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const OLGA = { name: 'olga', role: 'operator', password: 'olga-pw-1' };
const VERA = { name: 'vera', role: 'viewer', password: 'vera-pw-1' };
const FLOW_TASKS = ['extract', 'transform', 'load', 'report'];
const enc = encodeURIComponent;

function attrs(locator, ...names) {
    return locator.evaluateAll((els, ns) => els.map((e) => Object.fromEntries(
        ns.map((n) => [n, e.getAttribute(n)]))), names);
}

test('4. run page: a gantt-bar per task, the critical path marked and listed', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'gantt', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
    const p = s.page;
    b.open('flow');
    const runId = await b.trigger('flow');
    assert.equal((await b.runEnded('flow', runId)).state, 'success');

    await s.login(OLGA.name);
    await s.goto(`#/dags/flow/runs/${enc(runId)}`);
    await s.byId('run-title').waitFor();
    await p.locator(sel('run-state', { state: 'success' })).waitFor();
    await p.locator(sel('gantt-bar')).nth(FLOW_TASKS.length - 1).waitFor();
    const bars = await attrs(p.locator(sel('gantt-bar')), 'data-task', 'data-state', 'data-critical');
    assert.deepEqual(bars.map((x) => x['data-task']).sort(), [...FLOW_TASKS].sort(), JSON.stringify(bars));
    for (const x of bars) {
        assert.equal(x['data-state'], 'success', JSON.stringify(x));
        assert.ok(['true', 'false'].includes(x['data-critical']), JSON.stringify(x));
    }
    // transform sleeps: extract -> transform -> load is the critical path, report is not on it
    const crit = Object.fromEntries(bars.map((x) => [x['data-task'], x['data-critical']]));
    assert.deepEqual(crit, { extract: 'true', transform: 'true', load: 'true', report: 'false' });
    const text = await s.byId('critical-path').textContent();
    const at = ['extract', 'transform', 'load'].map((x) => text.indexOf(x));
    assert.ok(at[0] >= 0 && at[0] < at[1] && at[1] < at[2], `critical-path text: ${text}`);
    assert.ok(!/report/.test(text), `critical-path lists report: ${text}`);
    assert.match(text, /\d/, `critical-path text has no length: ${text}`);
    // the task table
    const rows = await attrs(p.locator(sel('task-row')), 'data-task', 'data-state');
    assert.deepEqual(rows.map((x) => x['data-task']).sort(), [...FLOW_TASKS].sort());
    assert.ok(rows.every((x) => x['data-state'] === 'success'), JSON.stringify(rows));
    assert.equal(await p.locator(sel('run-cancel')).count(), 0, 'run-cancel shown for an ended run');
    await s.shot('run');
    await finish(b, s);
});

test('4b. run page: a retried task shows each try as its own bar, coloured by how it ended, '
    + 'in order across the retry delay', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'tries', dags: { 'retried.yaml': dags.retried }, users: [OLGA] });
    const p = s.page;
    const runId = await b.trigger('retried');
    assert.equal((await b.runEnded('retried', runId)).state, 'success');
    assert.equal((await b.task('retried', runId, 'flaky')).try_number, 2);

    await s.login(OLGA.name);
    await s.goto(`#/dags/retried/runs/${enc(runId)}`);
    const row = p.locator(sel('gantt-bar', { task: 'flaky' }));
    await row.locator(sel('gantt-try')).nth(1).waitFor();
    const tries = await row.locator(sel('gantt-try')).evaluateAll((els) => els.map((e) => ({
        n: e.getAttribute('data-try'), state: e.getAttribute('data-state'),
        x: Number(e.getAttribute('x')), w: Number(e.getAttribute('width')) })));
    assert.deepEqual(tries.map((x) => [x.n, x.state]), [['1', 'failed'], ['2', 'success']],
        JSON.stringify(tries));
    assert.ok(tries[0].x + tries[0].w < tries[1].x, `the retry delay is not between the tries: ${JSON.stringify(tries)}`);
    assert.equal(await row.locator('line.gretry').count(), 1, 'no line across the retry delay');
    const tip = await row.getAttribute('aria-label');
    assert.match(tip, /try 1 failed.*try 2 success/i, tip);
    // a task that ran once keeps one bar
    const once = p.locator(sel('gantt-bar', { task: 'after' }));
    assert.equal(await once.locator(sel('gantt-try')).count(), 0);
    assert.equal(await once.locator('rect.gr').count(), 1);
    await s.shot('run-tries');
    await finish(b, s);
});

test('4c. run page: of 120 retried instances, the tries of at most 100 are fetched, once each',
    { timeout: 120_000 }, async (t) => {
        const { b, s } = await setup(t, browser, { name: 'manytries', dags: { 'many.yaml': dags.manyRetried }, users: [OLGA] });
        const p = s.page;
        const runId = await b.trigger('many_retried');
        assert.equal((await b.runEnded('many_retried', runId)).state, 'success');
        const fetched = [];
        p.on('request', (rq) => {
            if (/\/tasks\/each[^/]*$/.test(new URL(rq.url()).pathname)) fetched.push(rq.url());
        });
        await s.login(OLGA.name);
        await s.goto(`#/dags/many_retried/runs/${enc(runId)}`);
        await until(async () => (await p.locator(sel('gantt-try')).count()) >= 200, 'the tries drawn');
        await p.waitForTimeout(1500); // any further fetches would have started by now
        assert.equal(fetched.length, 100, `${fetched.length} fetches`);
        assert.equal(new Set(fetched).size, 100, 'an instance fetched twice');
        assert.equal(await p.locator(sel('gantt-try')).count(), 200);
        await finish(b, s);
    });

test('4d. run page: a run queued behind a paused DAG says why it has no task instances, '
    + 'then fills in live once the DAG is unpaused', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'queued', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
    const p = s.page;
    assert.equal((await b.api('PATCH', '/dags/flow', { paused: true })).status, 200);
    const runId = await b.trigger('flow');

    await s.login(OLGA.name);
    await s.goto(`#/dags/flow/runs/${enc(runId)}`);
    await p.locator(sel('run-state', { state: 'queued' })).waitFor();
    await p.getByText('No task instances yet: the run is queued (is the DAG paused?).').waitFor();
    assert.equal(await p.locator(sel('task-row')).count(), 0);
    assert.match(await s.byId('critical-path').textContent(), /shown once tasks end/);
    assert.equal(await p.locator(sel('run-cancel')).count(), 1, 'no run-cancel for a queued run');
    await setMarker(p);

    // unpaused, the run starts: its instances appear without a reload (transform waits on its gate)
    assert.equal((await b.api('PATCH', '/dags/flow', { paused: false })).status, 200);
    await p.locator(sel('task-row', { task: 'extract', state: 'success' })).waitFor();
    await p.locator(sel('task-row', { task: 'transform', state: 'running' })).waitFor();
    await p.locator(sel('run-state', { state: 'running' })).waitFor();
    b.open('flow');
    for (const task of FLOW_TASKS)
        await p.locator(sel('task-row', { task, state: 'success' })).waitFor();
    await p.locator(sel('run-state', { state: 'success' })).waitFor();
    assert.equal(await p.locator(sel('run-cancel')).count(), 0, 'run-cancel left on an ended run');
    assert.equal(await p.getByText('No task instances yet').count(), 0);
    assert.ok(await hasMarker(p), 'the page was reloaded');
    await finish(b, s);
});

test('5. task instance page: the log text, and a live tail of a task that is still printing',
    { timeout: 120_000 }, async (t) => {
        const { b, s } = await setup(t, browser, { name: 'log', dags: { 'tail.yaml': dags.tail }, users: [OLGA] });
        const p = s.page;
        const runId = await b.trigger('tail');
        // stream printed its first line and waits on its gate
        await until(async () => (await b.task('tail', runId, 'stream')).state === 'running', 'stream to run');
        await s.login(OLGA.name);

        // a finished task's log
        await s.goto(`#/dags/tail/runs/${enc(runId)}/tasks/say`);
        await s.byId('task-title').waitFor();
        assert.match(await s.byId('task-title').textContent(), /say/);
        await p.locator(sel('task-state', { state: 'success' })).waitFor();
        await p.locator(sel('try-row', { try: 1 })).waitFor();
        await until(async () => (await s.byId('log').textContent()).includes(dags.KNOWN_LINE), 'the known line in the log');

        // the running task: first line there, later lines arrive without a reload
        await s.goto(`#/dags/tail/runs/${enc(runId)}/tasks/stream?try=1`);
        await p.locator(sel('task-state', { state: 'running' })).waitFor();
        await until(async () => (await s.byId('log').textContent()).includes('tail-line-01'), 'tail-line-01 in the log');
        assert.ok(!(await s.byId('log').textContent()).includes('tail-line-08'), 'the last line before the gate opened?');
        await s.byId('log-follow').waitFor();
        await setMarker(p);
        // watch, every 20 ms, for a moment where the try still runs and the log shows a middle line
        await p.evaluate(() => {
            window.__btestMid = false;
            const id = setInterval(() => {
                const log = document.querySelector('[data-testid="log"]');
                const st = document.querySelector('[data-testid="task-state"]');
                if (log && st && st.getAttribute('data-state') === 'running'
                    && /tail-line-0[2-7]/.test(log.textContent) && !log.textContent.includes('tail-line-08')) {
                    window.__btestMid = true;
                    clearInterval(id);
                }
            }, 20);
        });
        b.open('tail');
        await until(async () => (await s.byId('log').textContent()).includes('tail-line-08'), 'tail-line-08 live');
        await p.locator(sel('task-state', { state: 'success' })).waitFor();
        assert.ok(await p.evaluate(() => window.__btestMid),
            'the log never showed a middle line while the try ran: no live tail, only the end');
        assert.ok(await hasMarker(p), 'the page was reloaded');
        const log = await s.byId('log').textContent();
        for (let i = 1; i <= 8; i++)
            assert.equal(log.split(`tail-line-0${i}`).length - 1, 1, `tail-line-0${i} not exactly once in:\n${log}`);
        await s.shot('task-log');
        await finish(b, s);
    });

test('6. operator clears a failed task (confirm dialog: cancel does nothing, OK reruns it): '
    + 'its try number grows and it ends success', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'clear', dags: { 'flaky.yaml': dags.flaky }, users: [OLGA] });
    const p = s.page;
    const runId = await b.trigger('flaky');
    assert.equal((await b.runEnded('flaky', runId)).state, 'failed');
    assert.equal((await b.task('flaky', runId, 'flaky')).try_number, 1);

    await s.login(OLGA.name);
    await s.goto(`#/dags/flaky/runs/${enc(runId)}`);
    const row = p.locator(sel('task-row', { task: 'flaky' }));
    await p.locator(sel('task-row', { task: 'flaky', state: 'failed' })).waitFor();
    await setMarker(p);
    await recordStates(p, 'task-row');

    // cancel: nothing happens
    await row.getByTestId('task-clear').click();
    await s.byId('confirm-dialog').waitFor({ state: 'visible' });
    await s.byId('confirm-cancel').click();
    await s.byId('confirm-dialog').waitFor({ state: 'hidden' });
    const still = await b.task('flaky', runId, 'flaky');
    assert.equal(still.try_number, 1, 'confirm-cancel cleared the task');
    assert.equal(still.state, 'failed');

    // OK: the task runs again and succeeds (its second try)
    await p.locator(sel('task-row', { task: 'flaky' })).getByTestId('task-clear').click();
    await s.byId('confirm-dialog').waitFor({ state: 'visible' });
    await s.byId('confirm-ok').click();
    await s.byId('confirm-dialog').waitFor({ state: 'hidden' });
    await p.locator(sel('task-row', { task: 'flaky', state: 'success' })).waitFor();
    const ti = await until(async () => { const x = await b.task('flaky', runId, 'flaky'); return x.state === 'success' && x; },
        'flaky to succeed in the API');
    assert.equal(ti.try_number, 2);
    const seen = (await seenStates(p, 'task-row')).flaky || [];
    assert.equal(seen[0], 'failed', JSON.stringify(seen));
    assert.equal(seen[seen.length - 1], 'success', JSON.stringify(seen));
    assert.ok(await hasMarker(p), 'the page was reloaded');
    await b.runEnded('flaky', runId);
    await finish(b, s);
});

test('6c. operator clears a failed task while the run still runs: a clear button on the ended '
    + 'task only, the clear is requested, and the task runs again once the running one ends',
    { timeout: 120_000 }, async (t) => {
        const { b, s } = await setup(t, browser, { name: 'liveclear', dags: { 'branchy.yaml': dags.branchy }, users: [OLGA] });
        const p = s.page;
        const runId = await b.trigger('branchy');
        await until(async () => (await b.task('branchy', runId, 'fails')).state === 'failed' &&
            (await b.task('branchy', runId, 'slow')).state === 'running', 'fails to fail while slow runs');
        await s.login(OLGA.name);
        await s.goto(`#/dags/branchy/runs/${enc(runId)}`);
        await p.locator(sel('task-row', { task: 'fails', state: 'failed' })).waitFor();
        await p.locator(sel('run-state', { state: 'running' })).waitFor();
        const slowRow = p.locator(sel('task-row', { task: 'slow' }));
        assert.equal(await slowRow.getByTestId('task-clear').count(), 0, 'a clear button on a running task');
        await p.locator(sel('task-row', { task: 'fails' })).getByTestId('task-clear').click();
        await s.byId('confirm-dialog').waitFor({ state: 'visible' });
        await s.byId('confirm-ok').click();
        await p.getByText(/Clear of fails requested/).waitFor();
        // nothing is cleared while slow runs
        assert.equal((await b.task('branchy', runId, 'fails')).state, 'failed');
        b.open('branchy');
        await p.locator(sel('run-state', { state: 'success' })).waitFor({ timeout: 30_000 });
        await p.locator(sel('task-row', { task: 'fails', state: 'success' })).waitFor();
        const ti = await b.task('branchy', runId, 'fails');
        assert.equal(ti.try_number, 2);
        assert.equal((await b.task('branchy', runId, 'slow')).try_number, 1);
        await finish(b, s);
    });

test('7. a viewer sees no operator controls (dag-trigger, dag-paused-toggle, task-clear, '
    + 'run-cancel), where an operator sees them', { timeout: 120_000 }, async (t) => {
    const { b, s: op } = await setup(t, browser, { name: 'viewer', dags: { 'flow.yaml': dags.flow }, users: [OLGA, VERA] });
    const runId = await b.trigger('flow');
    await until(async () => (await b.task('flow', runId, 'transform')).state === 'running', 'transform to run');
    const runHash = `#/dags/flow/runs/${enc(runId)}`;

    const vs = await new Session(browser, b).open();
    t.after(() => vs.close());
    const v = vs.page;
    const o = op.page;
    const count = (page, id) => page.locator(sel(id)).count();

    // DAG list
    await op.login(OLGA.name);
    await vs.login(VERA.name);
    assert.match(await vs.byId('whoami').textContent(), /vera/i);
    assert.match(await vs.byId('whoami').textContent(), /viewer/i);
    await o.locator(sel('dag-row', { dag: 'flow' })).getByTestId('dag-trigger').waitFor();
    assert.equal(await count(o, 'dag-paused-toggle'), 1, 'operator: no dag-paused-toggle');
    await v.locator(sel('dag-row', { dag: 'flow' })).waitFor();
    await v.locator(sel('run-mark')).first().waitFor();
    assert.equal(await count(v, 'dag-trigger'), 0, 'viewer: dag-trigger on the DAG list');
    assert.equal(await count(v, 'dag-paused-toggle'), 0, 'viewer: dag-paused-toggle on the DAG list');

    // DAG page
    await vs.goto('#/dags/flow');
    await v.locator(sel('graph-node')).nth(FLOW_TASKS.length - 1).waitFor();
    assert.equal(await count(v, 'dag-trigger'), 0, 'viewer: dag-trigger on the DAG page');

    // run page while running: the operator has run-cancel, the viewer not
    await op.goto(runHash);
    await o.locator(sel('run-cancel')).waitFor();
    await vs.goto(runHash);
    await v.locator(sel('task-row')).nth(FLOW_TASKS.length - 1).waitFor();
    await v.locator(sel('task-row', { task: 'transform', state: 'running' })).waitFor();
    assert.equal(await count(v, 'run-cancel'), 0, 'viewer: run-cancel on a running run');

    // ended run: the operator has task-clear, the viewer not
    b.open('flow');
    await b.runEnded('flow', runId);
    await o.locator(sel('run-state', { state: 'success' })).waitFor();
    await o.locator(sel('task-clear')).first().waitFor();
    await v.locator(sel('run-state', { state: 'success' })).waitFor();
    await v.locator(sel('task-row', { task: 'load', state: 'success' })).waitFor();
    assert.equal(await count(v, 'task-clear'), 0, 'viewer: task-clear');
    assert.equal(await count(v, 'task-clear-downstream'), 0, 'viewer: task-clear-downstream');
    assert.equal(await count(v, 'run-cancel'), 0, 'viewer: run-cancel');

    vs.assertClean();
    await vs.close();
    await finish(b, op);
});

test('9. grid view: a grid-cell per task x run with its state; a click opens the task page',
    { timeout: 120_000 }, async (t) => {
        const { b, s } = await setup(t, browser, {
            name: 'grid', dags: { 'flow.yaml': dags.flow, 'failing.yaml': dags.failing, 'tail.yaml': dags.tail },
            users: [OLGA],
        });
        const p = s.page;
        b.open('flow');
        b.open('tail');
        const runs = [];
        for (let i = 0; i < 2; i++) {
            runs.push(await b.trigger('flow'));
            await b.runEnded('flow', runs[i]);
        }
        // for a DAG list with more to show
        await b.runEnded('failing', await b.trigger('failing'));
        await b.runEnded('tail', await b.trigger('tail'));

        await s.login(OLGA.name);
        await p.locator(sel('run-mark', { state: 'failed' })).waitFor();
        await p.locator(sel('dag-row', { dag: 'flow' })).locator(sel('run-mark')).nth(1).waitFor();
        await s.shot('dags');

        // run marks: newest first, each a link to its run page
        const hrefs = await p.locator(sel('dag-row', { dag: 'flow' })).locator(sel('run-mark')).evaluateAll(
            (ms) => ms.map((m) => decodeURIComponent((m.closest('a') || m.querySelector('a') || m).getAttribute('href') || '')));
        assert.equal(hrefs.length, 2, JSON.stringify(hrefs));
        assert.ok(hrefs[0].includes(`/runs/${runs[1]}`) && hrefs[1].includes(`/runs/${runs[0]}`),
            `run-mark links, newest first: ${JSON.stringify(hrefs)} (runs ${JSON.stringify(runs)})`);
        await p.locator(sel('dag-row', { dag: 'flow' })).locator(sel('run-mark')).first().click();
        await s.byId('run-title').waitFor();
        assert.ok((await s.byId('run-title').textContent()).includes(runs[1]), 'the newest run-mark led elsewhere');
        await s.byId('nav-dags').click();

        await p.locator(sel('dag-row', { dag: 'flow' })).getByTestId('dag-link').click();
        await s.byId('view-grid').click();
        await p.locator(sel('grid-cell')).nth(2 * FLOW_TASKS.length - 1).waitFor();
        const cells = await attrs(p.locator(sel('grid-cell')), 'data-task', 'data-run', 'data-state');
        assert.equal(cells.length, 2 * FLOW_TASKS.length, JSON.stringify(cells));
        const want = [];
        for (const r of runs)
            for (const task of FLOW_TASKS)
                want.push(`${task} ${r} success`);
        assert.deepEqual(cells.map((c) => `${c['data-task']} ${c['data-run']} ${c['data-state']}`).sort(), want.sort());
        await s.shot('grid');

        await p.locator(sel('grid-cell', { task: 'transform', run: runs[0] })).click();
        await s.byId('task-title').waitFor();
        assert.match(await s.byId('task-title').textContent(), /transform/);
        const hash = await p.evaluate(() => location.hash);
        assert.ok(hash.startsWith(`#/dags/flow/runs/${enc(runs[0])}/tasks/transform`), `grid-cell led to ${hash}`);
        await until(async () => (await s.byId('log').textContent()).includes('transformed for nobody'),
            'transform\'s log');
        // the header's link back to the DAG list
        await s.byId('nav-dags').click();
        await p.locator(sel('dag-row', { dag: 'flow' })).waitFor();
        assert.equal(await p.evaluate(() => location.hash.replace(/^#?\/?$/, '#/')), '#/');
        await finish(b, s);
    });

test('6b. operator clears a failed task with its downstream: both run, the run ends success live; '
    + 'the task page lists both tries and shows each try\'s log', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'cleardown', dags: { 'flaky.yaml': dags.flaky }, users: [OLGA] });
    const p = s.page;
    const runId = await b.trigger('flaky');
    assert.equal((await b.runEnded('flaky', runId)).state, 'failed');
    assert.equal((await b.task('flaky', runId, 'after')).state, 'upstream_failed');

    await s.login(OLGA.name);
    await s.goto(`#/dags/flaky/runs/${enc(runId)}`);
    await p.locator(sel('run-state', { state: 'failed' })).waitFor();
    await p.locator(sel('task-row', { task: 'after', state: 'upstream_failed' })).waitFor();
    await setMarker(p);
    await p.locator(sel('task-row', { task: 'flaky' })).getByTestId('task-clear-downstream').click();
    await s.byId('confirm-dialog').waitFor({ state: 'visible' });
    await s.byId('confirm-ok').click();
    await p.locator(sel('task-row', { task: 'flaky', state: 'success' })).waitFor();
    await p.locator(sel('task-row', { task: 'after', state: 'success' })).waitFor();
    await p.locator(sel('run-state', { state: 'success' })).waitFor();
    assert.ok(await hasMarker(p), 'the page was reloaded');
    assert.equal((await b.runEnded('flaky', runId)).state, 'success');
    assert.equal((await b.task('flaky', runId, 'flaky')).try_number, 2);

    // the task page: two tries (exit codes 3 and 0), the newest try's log, then try 1's
    await p.locator(sel('task-row', { task: 'flaky' })).getByTestId('task-link').click();
    await s.byId('task-title').waitFor();
    await p.locator(sel('try-row', { try: 2 })).waitFor();
    assert.equal(await p.locator(sel('try-row')).count(), 2);
    const cells = (n) => p.locator(sel('try-row', { try: n })).evaluate(
        (tr) => Array.from(tr.querySelectorAll('td, th'), (c) => c.textContent.trim()));
    assert.ok((await cells(1)).includes('3'), `try 1 shows no exit code 3: ${JSON.stringify(await cells(1))}`);
    assert.ok((await cells(2)).includes('0'), `try 2 shows no exit code 0: ${JSON.stringify(await cells(2))}`);
    await until(async () => (await s.byId('log').textContent()).includes('second try works'), 'try 2\'s log');
    await s.byId('try-selector').selectOption('1');
    await until(async () => (await s.byId('log').textContent()).includes('first try fails'), 'try 1\'s log');
    assert.ok(!(await s.byId('log').textContent()).includes('second try works'), 'try 1 shows try 2\'s log');
    await finish(b, s);
});

test('12. operator cancels a running run (confirm dialog): the run page shows it cancelled live',
    { timeout: 120_000 }, async (t) => {
        const { b, s } = await setup(t, browser, { name: 'cancel', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
        const p = s.page;
        const runId = await b.trigger('flow');
        await until(async () => (await b.task('flow', runId, 'transform')).state === 'running', 'transform to run');
        await s.login(OLGA.name);
        await s.goto(`#/dags/flow/runs/${enc(runId)}`);
        await p.locator(sel('run-state', { state: 'running' })).waitFor();
        await p.locator(sel('task-row', { task: 'transform', state: 'running' })).waitFor();
        await setMarker(p);
        await s.byId('run-cancel').click();
        await s.byId('confirm-dialog').waitFor({ state: 'visible' });
        await s.byId('confirm-ok').click();
        await p.locator(sel('run-state', { state: 'cancelled' })).waitFor();
        assert.equal((await b.runEnded('flow', runId)).state, 'cancelled');
        await until(async () => (await p.locator(sel('run-cancel')).count()) === 0, 'run-cancel to go away');
        const tr = await b.task('flow', runId, 'transform');
        assert.notEqual(tr.state, 'success', 'the cancelled run\'s running task went on to success');
        assert.equal((await b.task('flow', runId, 'load')).state === 'success', false, 'load ran after the cancel');
        assert.ok(await hasMarker(p), 'the page was reloaded');
        await finish(b, s);
    });

/* Console errors of requests that fail while the daemon is down (or held back by the test). */
const DOWN = [/net::ERR_(CONNECTION_REFUSED|INCOMPLETE_CHUNKED_ENCODING|EMPTY_RESPONSE|CONNECTION_RESET|CONNECTION_CLOSED|FAILED|ABORTED)/];

/* A DAG list with one finished flow run; returns {b, s, marks}. */
async function listWithOneRun(t, name) {
    const { b, s } = await setup(t, browser, { name, dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
    b.open('flow');
    await b.runEnded('flow', await b.trigger('flow'));
    await s.login(OLGA.name);
    const marks = s.page.locator(sel('dag-row', { dag: 'flow' })).locator(sel('run-mark'));
    await marks.first().waitFor();
    assert.equal(await marks.count(), 1);
    await setMarker(s.page);
    return { b, s, marks };
}

test('13. the live updates survive a daemon restart: once the page has reconnected, the DAG '
    + 'list shows a new run live, without a reload', { timeout: 120_000 }, async (t) => {
    const { b, s, marks } = await listWithOneRun(t, 'restart');
    const p = s.page;
    await b.stop({ keep: true });
    const since = Date.now();
    const reconnected = p.waitForResponse((r) => r.url().includes('/api/v1/events') && r.status() === 200
        && Date.now() > since, { timeout: 45_000 });
    await b.start(b.port);
    await reconnected;
    await b.runEnded('flow', await b.trigger('flow'));
    await until(async () => (await marks.count()) === 2, 'the new run\'s run-mark, live after the restart');
    await p.locator(sel('dag-row', { dag: 'flow' })).locator(sel('run-mark', { state: 'success' })).nth(1).waitFor();
    assert.ok(await hasMarker(p), 'the page was reloaded');
    await finish(b, s, DOWN);
});

test('13b. a run made while the page was disconnected shows up once it reconnects, without a reload',
    { timeout: 120_000 }, async (t) => {
        const { b, s, marks } = await listWithOneRun(t, 'gap');
        const p = s.page;
        // the page has seen no event yet (so no Last-Event-ID to resume from); the daemon
        // restarts and a run is made while the page's event stream is held off
        await b.stop({ keep: true });
        const hold = (route) => route.abort();
        await p.route('**/api/v1/events*', hold);
        await b.start(b.port);
        await b.runEnded('flow', await b.trigger('flow'));
        await p.unroute('**/api/v1/events*', hold);
        // the page reconnects within its backoff (at most 10 s) and must then catch up
        await until(async () => (await marks.count()) === 2, 'the run made during the gap, after reconnecting', 20_000);
        assert.ok(await hasMarker(p), 'the page was reloaded');
        await finish(b, s, DOWN);
    });

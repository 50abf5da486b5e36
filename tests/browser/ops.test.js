'use strict';
/*
 * ops.test.js - the state-operation dialogs and the Audit page (SPEC section 13): on the DAG
 * page Backfill... and Clear..., on the run page Mark run..., on the task page Mark...; each
 * dialog's Cancel changes nothing and its submit does what the API says it did. A viewer sees
 * none of the buttons and no Audit link; the admin's Audit page lists what was done.
 * One `baram standalone`, Chromium headless.
 */
const { after, before, test } = require('node:test');
const { assert, finish, launchBrowser, setup, until } = require('./lib/harness');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const OLGA = { name: 'olga', role: 'operator', password: 'olga-pw-1' };
const VERA = { name: 'vera', role: 'viewer', password: 'vera-pw-1' };

const DAILY = `dag: daily
schedule: "@daily"
start: 2026-01-01
catchup: false
tasks:
  x:
    run: "true"
  y:
    needs: [x]
    run: "true"
`;

/* The backfill runs of daily (the scheduler also makes its latest scheduled run). */
async function backfills(b) {
    return (await b.runs('daily')).filter((r) => r.run_id.startsWith('backfill__'));
}

async function dialogCancel(s, name) {
    const dlg = s.byId(`${name}-dialog`);
    await dlg.waitFor({ state: 'visible' });
    await s.byId(`${name}-cancel`).click();
    await dlg.waitFor({ state: 'detached' });
}

test('15. operator dialogs: backfill, clear, mark run, mark task (cancel changes nothing); '
    + 'hidden for viewers; the admin audit page', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'ops', dags: { 'daily.yaml': DAILY },
        users: [OLGA, VERA] });
    const p = s.page;

    // a viewer: no operator buttons, no Audit link
    await s.login(VERA.name);
    await s.goto('#/dags/daily');
    await s.byId('dag-title').waitFor();
    assert.equal(await s.byId('dag-backfill').count(), 0, 'viewer sees Backfill');
    assert.equal(await s.byId('dag-clear').count(), 0, 'viewer sees Clear');
    assert.equal(await s.byId('nav-audit').count(), 0, 'viewer sees Audit');
    await s.byId('logout').click();

    await s.login(OLGA.name);
    assert.equal(await s.byId('nav-audit').count(), 0, 'an operator sees Audit');
    await s.goto('#/dags/daily');
    await s.byId('dag-backfill').waitFor();

    // Backfill: cancel makes no run; submit makes one per date
    await s.byId('dag-backfill').click();
    await dialogCancel(s, 'backfill');
    assert.equal((await backfills(b)).length, 0, 'a cancelled backfill made runs');
    await s.byId('dag-backfill').click();
    await s.byId('backfill-from').fill('2026-01-01');
    await s.byId('backfill-to').fill('2026-01-02');
    await s.byId('backfill-submit').click();
    await s.byId('backfill-dialog').waitFor({ state: 'detached' });
    const runs = await until(async () => { const r = await backfills(b); return r.length === 2 && r; },
        'the two backfill runs');
    for (const r of runs) assert.equal((await b.runEnded('daily', r.run_id)).state, 'success');
    const runId = runs[0].run_id;

    // Clear: cancel clears nothing; submit (task x) runs x again in both runs
    await s.byId('dag-clear').click();
    await dialogCancel(s, 'clear');
    assert.equal((await b.task('daily', runId, 'x')).try_number, 1, 'a cancelled clear cleared');
    await s.byId('dag-clear').click();
    await s.byId('clear-from').fill('2026-01-01');
    await s.byId('clear-to').fill('2026-01-02');
    await s.byId('clear-task').selectOption('x');
    await s.byId('clear-submit').click();
    await s.byId('clear-dialog').waitFor({ state: 'detached' });
    for (const r of runs)
        await until(async () => (await b.task('daily', r.run_id, 'x')).try_number === 2
            && (await b.run('daily', r.run_id)).state === 'success', `x of ${r.run_id} to run again`);

    // Mark run: cancel keeps it; submit marks it failed
    await s.goto(`#/dags/daily/runs/${encodeURIComponent(runId)}`);
    await s.byId('run-mark').click();
    await dialogCancel(s, 'markrun');
    assert.equal((await b.run('daily', runId)).state, 'success');
    await s.byId('run-mark').click();
    await s.byId('markrun-state').selectOption('failed');
    await s.byId('markrun-submit').click();
    await s.byId('markrun-dialog').waitFor({ state: 'detached' });
    await until(async () => (await b.run('daily', runId)).state === 'failed', 'the run marked failed');

    // Mark task: cancel keeps it; submit with downstream marks x and y failed
    await s.goto(`#/dags/daily/runs/${encodeURIComponent(runId)}/tasks/x`);
    await s.byId('task-mark').click();
    await dialogCancel(s, 'mark');
    assert.equal((await b.task('daily', runId, 'x')).state, 'success');
    await s.byId('task-mark').click();
    await s.byId('mark-state').selectOption('failed');
    await s.byId('mark-downstream').check();
    await s.byId('mark-submit').click();
    await s.byId('mark-dialog').waitFor({ state: 'detached' });
    await until(async () => (await b.task('daily', runId, 'y')).state === 'failed', 'y marked failed');
    assert.equal((await b.task('daily', runId, 'x')).state, 'failed');
    await s.byId('logout').click();

    // the admin's Audit page lists the four actions, newest first
    await s.login('admin');
    await s.byId('nav-audit').click();
    await until(() => p.url().includes('#/audit'), 'the #/audit route');
    await p.locator('[data-testid="audit-row"]').nth(3).waitFor();
    const acts = await p.locator('[data-testid="audit-action"]').allTextContents();
    assert.deepEqual(acts.slice(0, 4), ['mark', 'mark', 'clear', 'backfill'], `audit: ${acts}`);
    await s.byId('audit-dag').fill('nope');
    await s.byId('audit-filters').locator('button').click();
    await s.byId('audit-empty').waitFor();

    await finish(b, s);
});

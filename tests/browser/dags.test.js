'use strict';
/*
 * dags.test.js - the DAG list (description, schedule, pause toggle, import
 * errors banner) and triggering a run from the UI, then watching the graph
 * change live. One real `baram standalone` per test, Chromium headless.
 */
const { after, before, test } = require('node:test');
const path = require('node:path');
const { assert, finish, httpStatus, launchBrowser, setup, until } = require('./lib/harness');
const { hasMarker, recordStates, seenStates, sel, setMarker, toggleOn } = require('./lib/page');
const dags = require('./lib/dags');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const OLGA = { name: 'olga', role: 'operator', password: 'olga-pw-1' };
const FLOW_TASKS = ['extract', 'transform', 'load', 'report'];

test('2. DAG list: description and schedule shown; the pause toggle pauses and unpauses '
    + '(checked through the API and the CLI)', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'pause', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
    const p = s.page;
    await s.login(OLGA.name);
    const row = p.locator(sel('dag-row', { dag: 'flow' }));
    await row.waitFor();
    assert.equal(await row.getByTestId('dag-link').count(), 1, 'no dag-link in the row');
    assert.match(await row.getByTestId('dag-link').textContent(), /flow/);
    assert.match(await row.getByTestId('dag-description').textContent(), /Extract, transform and load the test orders/);
    assert.match(await row.getByTestId('dag-schedule').textContent(), /0 3 \* \* \*/);
    assert.notEqual((await row.getByTestId('next-run').textContent()).trim(), '', 'next-run is empty');

    const toggle = row.getByTestId('dag-paused-toggle');
    const paused = async () => (await b.get('/dags/flow')).paused;
    const cliPaused = () => JSON.parse(b.cli(['dags', 'list', '--json', '--home', b.home]))
        .dags.find((d) => d.dag_id === 'flow').paused;
    assert.equal(await toggleOn(toggle), false, 'the toggle shows paused for an unpaused DAG');
    assert.equal(await paused(), false);

    await toggle.click();
    // an action says what it did in a toast (role=status)
    await s.byId('toast').first().waitFor();
    assert.equal(await s.byId('toast').first().getAttribute('role'), 'status');
    await until(async () => (await toggleOn(toggle)) === true, 'the toggle to show paused');
    await until(async () => (await paused()) === true, 'the API to say paused');
    assert.equal(cliPaused(), true, 'baram dags list --json does not say paused');

    // the state survives a reload (it comes from the server; GET /dags, which the list
    // reads, may lag a PATCH by a moment)
    await until(async () => (await b.get('/dags')).dags.find((d) => d.dag_id === 'flow').paused === true,
        'GET /dags to say paused');
    await p.reload();
    await p.locator(sel('dag-row', { dag: 'flow' })).waitFor();
    assert.equal(await toggleOn(p.locator(sel('dag-row', { dag: 'flow' })).getByTestId('dag-paused-toggle')), true,
        'after a reload the toggle does not show paused');

    await p.locator(sel('dag-row', { dag: 'flow' })).getByTestId('dag-paused-toggle').click();
    await until(async () => (await paused()) === false, 'the API to say unpaused');
    await until(async () => (await toggleOn(p.locator(sel('dag-row', { dag: 'flow' }))
        .getByTestId('dag-paused-toggle'))) === false, 'the toggle to show unpaused');
    assert.equal(cliPaused(), false, 'baram dags list --json still says paused');

    await finish(b, s);
});

test('2b. a DAG with a time zone: its next run also on its own clock, in the list and on its '
    + 'page', { timeout: 60_000 }, async (t) => {
    const berlin = `dag: berlin
schedule: "30 2 * * *"
start: 2031-03-29T12:00:00Z
timezone: Europe/Berlin
tasks:
  a: {run: echo hi}
`;
    const { b, s } = await setup(t, browser, { name: 'tz', dags: { 'berlin.yaml': berlin }, users: [OLGA] });
    await s.login(OLGA.name);
    const row = s.page.locator(sel('dag-row', { dag: 'berlin' }));
    await row.waitFor();
    // the run of Mar 30 (its 02:30 does not exist: 03:00 local) is due at 02:30 on the 31st
    assert.equal((await row.getByTestId('next-run-zoned').textContent()).trim(),
        '2031-03-31 02:30 Europe/Berlin');
    // a run of Mar 30 (01:00Z): the run selector shows its logical date on Berlin's clock too
    b.cli(['run', path.join(b.dags, 'berlin.yaml'), '--date', '2031-03-30T01:00:00Z',
           '--home', b.home]);
    await s.goto('#/dags/berlin');
    await s.byId('dag-title').waitFor();
    assert.match(await s.byId('next-run-zoned').textContent(), /2031-03-31 02:30 Europe\/Berlin/);
    await until(async () => /2031-03-30 03:00 Europe\/Berlin/.test(
        await s.page.locator('select option').allTextContents().then((x) => x.join('\n'))),
    'the run selector names the logical date on Berlin\'s clock');
    await finish(b, s);
});

test('3. trigger from the UI with conf (bad JSON shows trigger-error), then the graph turns '
    + 'running -> success live, without a reload', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'trigger', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
    const p = s.page;
    await s.login(OLGA.name);
    const row = p.locator(sel('dag-row', { dag: 'flow' }));
    await row.waitFor();
    await setMarker(p);

    // bad JSON: trigger-error, the dialog stays, no run is made
    await row.getByTestId('dag-trigger').click();
    const dialog = s.byId('trigger-dialog');
    await dialog.waitFor({ state: 'visible' });
    // flow has a param, so the dialog opens on its form: the raw JSON is one click away
    await s.byId('trigger-param-who').waitFor();
    await s.byId('trigger-raw-toggle').check();
    await s.byId('trigger-conf').fill('{"who": ');
    await s.byId('trigger-submit').click();
    await s.byId('trigger-error').waitFor({ state: 'visible' });
    assert.notEqual((await s.byId('trigger-error').textContent()).trim(), '', 'trigger-error is empty');
    assert.ok(await dialog.isVisible(), 'the dialog closed on bad JSON');
    assert.equal((await b.runs('flow')).length, 0, 'a run was made from bad JSON');

    // good JSON: the dialog closes, a run is made with that conf
    await s.byId('trigger-conf').fill('{"who": "browser"}');
    await s.byId('trigger-submit').click();
    await dialog.waitFor({ state: 'hidden' });
    const runs = await until(async () => { const r = await b.runs('flow'); return r.length === 1 && r; },
        'the triggered run in the API');
    const runId = runs[0].run_id;

    // the DAG page shows that run; transform waits on its gate, so "running" lasts
    await row.getByTestId('dag-link').click();
    await s.byId('dag-title').waitFor();
    assert.match(await s.byId('dag-title').textContent(), /flow/);
    await until(async () => (await p.locator(`${sel('run-selector')} option`).evaluateAll(
        (os, id) => os.some((o) => o.value === id), runId)), 'the triggered run in run-selector');
    if ((await s.byId('run-selector').inputValue()) !== runId) {
        t.diagnostic('run-selector did not select the only run by itself; selecting it');
        await s.byId('run-selector').selectOption(runId);
    }
    await p.locator(sel('graph-node')).nth(FLOW_TASKS.length - 1).waitFor();
    assert.equal(await p.locator(sel('graph-node')).count(), FLOW_TASKS.length);
    assert.ok(await p.locator(sel('graph-edge')).count() >= 3, 'fewer than 3 graph-edges');
    // the legend: every state has a label (and a glyph, not colour alone)
    const legend = await s.byId('state-legend').textContent();
    for (const st of [/success/i, /fail/i, /running/i, /queued/i, /skipped/i])
        assert.match(legend, st, `state-legend: ${legend}`);
    await recordStates(p, 'graph-node');
    await p.locator(sel('graph-node', { task: 'transform', state: 'running' })).waitFor();
    await p.locator(sel('graph-node', { task: 'extract', state: 'success' })).waitFor();
    b.open('flow');
    for (const task of FLOW_TASKS)
        await p.locator(sel('graph-node', { task, state: 'success' })).waitFor();
    const seen = await seenStates(p, 'graph-node');
    const tr = seen.transform || [];
    assert.ok(tr.indexOf('running') >= 0 && tr.lastIndexOf('success') > tr.indexOf('running'),
        `transform's states seen: ${JSON.stringify(tr)}`);
    assert.ok(await hasMarker(p), 'the page was reloaded');
    await s.shot('graph');

    // the run really got the conf: transform printed it
    const run = await b.runEnded('flow', runId);
    assert.equal(run.state, 'success');
    const log = await fetch(`${b.base}/api/v1/dags/flow/runs/${encodeURIComponent(runId)}/tasks/transform/logs?try=1`,
        { headers: { Authorization: `Bearer ${await b.token()}` } });
    assert.match(await log.text(), /transformed for browser/);

    await finish(b, s, httpStatus(400)); // a UI may send bad JSON's check to the server
});

test('3b. the DAG page of a DAG that never ran shows its graph (nodes with state none)',
    { timeout: 60_000 }, async (t) => {
        const { b, s } = await setup(t, browser, { name: 'fresh', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
        await s.login(OLGA.name);
        await s.goto('#/dags/flow');
        await s.byId('dag-title').waitFor();
        await s.page.locator(sel('graph-node')).nth(FLOW_TASKS.length - 1).waitFor({ timeout: 15_000 });
        const states = await s.page.locator(sel('graph-node')).evaluateAll(
            (ns) => ns.map((n) => [n.getAttribute('data-task'), n.getAttribute('data-state')]).sort());
        assert.deepEqual(states, FLOW_TASKS.map((x) => [x, 'none']).sort());
        await finish(b, s);
    });

test('3c. DAG page: ?run= of a run older than the recent ones shows it; the run selector '
    + 'recolours the graph; a mapped node links to its first instance; arrow keys switch the tabs',
    { timeout: 180_000 }, async (t) => {
        const { b, s } = await setup(t, browser, { name: 'picker', dags: { 'picker.yaml': dags.picker }, users: [OLGA] });
        const p = s.page;
        // the oldest run fails its check; the 25 after it (as many as the page lists) pass
        const old = await b.trigger('picker', { ok: 'no' });
        assert.equal((await b.runEnded('picker', old)).state, 'failed');
        const ids = [];
        for (let i = 0; i < 25; i++) ids.push(await b.trigger('picker'));
        for (const id of ids) assert.equal((await b.runEnded('picker', id, 120_000)).state, 'success');
        const newest = ids[ids.length - 1];

        await s.login(OLGA.name);
        await s.goto(`#/dags/picker?run=${encodeURIComponent(old)}`);
        const check = (state) => p.locator(sel('graph-node', { task: 'check', state }));
        await check('failed').waitFor();
        const runSel = s.byId('run-selector');
        assert.equal(await runSel.inputValue(), old);
        const options = await p.locator(`${sel('run-selector')} option`).evaluateAll((os) => os.map((o) => o.value));
        assert.equal(options.length, 26, `run-selector options: ${options.length}`);
        assert.ok(options.includes(newest), 'the newest run is not in the run-selector');
        // a mapped task's node opens its first instance in the selected run
        const each = p.locator(sel('graph-node', { task: 'each' }));
        const mappedHref = (id) => `#/dags/picker/runs/${encodeURIComponent(id)}/tasks/${encodeURIComponent('each[0]')}`;
        assert.equal(await each.getAttribute('href'), mappedHref(old));

        // picking the newest run: the graph shows its states, the links and the URL follow
        await runSel.selectOption(newest);
        await check('success').waitFor();
        await until(async () => (await each.getAttribute('href')) === mappedHref(newest), 'each linking to the newest run');
        assert.equal(new URL(p.url()).hash, `#/dags/picker?run=${encodeURIComponent(newest)}`);

        // the tabs, from the keyboard
        await s.byId('view-graph').focus();
        await p.keyboard.press('ArrowRight');
        await s.byId('grid').waitFor();
        assert.equal(await s.byId('view-grid').getAttribute('aria-selected'), 'true');
        assert.ok(await p.evaluate(() => document.activeElement.getAttribute('data-testid') === 'view-grid'),
            'the focus did not move to the grid tab');
        assert.match(new URL(p.url()).hash, /[?&]view=grid/);
        await p.locator(sel('grid-cell', { task: 'check', run: newest, state: 'success' })).waitFor();
        await p.keyboard.press('ArrowLeft');
        await s.byId('graph').waitFor();
        assert.equal(await s.byId('view-graph').getAttribute('aria-selected'), 'true');
        assert.doesNotMatch(new URL(p.url()).hash, /view=/);
        await finish(b, s);
    });

test('8. import errors banner names the broken file and its line; the good DAG is still listed',
    { timeout: 60_000 }, async (t) => {
        const { b, s } = await setup(t, browser, {
            name: 'import', dags: { 'flow.yaml': dags.flow, 'broken.yaml': dags.broken }, users: [OLGA],
        });
        const p = s.page;
        await s.login(OLGA.name);
        await p.locator(sel('dag-row', { dag: 'flow' })).waitFor();
        await s.byId('import-errors').waitFor({ state: 'visible' });
        const items = await s.byId('import-errors').getByTestId('import-error').allTextContents();
        assert.ok(items.length >= 1, 'no import-error items');
        const line = new RegExp(`\\b${dags.BROKEN_LINE}\\b`);
        assert.ok(items.some((x) => /broken\.yaml/.test(x) && line.test(x)),
            `no import-error names broken.yaml and line ${dags.BROKEN_LINE}: ${JSON.stringify(items)}`);
        assert.equal(await p.locator(sel('dag-row', { dag: 'broken_one' })).count(), 0, 'the broken DAG is listed');
        await finish(b, s);
    });

test('8b. no import-errors banner when every file parses', { timeout: 60_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'noimport', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
    await s.login(OLGA.name);
    await s.page.locator(sel('dag-row', { dag: 'flow' })).waitFor();
    assert.equal(await s.byId('import-errors').count(), 0, 'an import-errors banner with no errors');
    await finish(b, s);
});

'use strict';
/*
 * versions.test.js - DAG versions in the UI (SPEC section 13). 15: the DAG file is edited
 * between two runs (a task removed, a command changed): the old run's graph on the DAG page
 * and its critical path on the run page come from the version it ran (the removed task shows),
 * the new run's from the new one; the Code tab shows the current source with line numbers, a
 * picker of both versions, and their diff marks the changed lines.
 */
const { after, before, test } = require('node:test');
const { assert, finish, launchBrowser, setup, until } = require('./lib/harness');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const V1 = `dag: ver
tasks:
  start:
    run: echo one
  gone:
    needs: [start]
    run: sleep 0.3
`;
const V2 = `dag: ver
tasks:
  start:
    run: echo two
`;

test('15. versions: an old run drawn from its own version, the Code tab and its diff',
    { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'versions', dags: { 'ver.yaml': V1 } });
    const p = s.page;
    const versions = async () => (await b.api('GET', '/dags/ver/versions')).body.versions || [];
    await until(async () => (await versions()).length === 1, 'the first version recorded');
    const old = await b.trigger('ver');
    await b.runEnded('ver', old);
    b.writeDag('ver.yaml', V2);
    await until(async () => (await versions()).length === 2, 'the edited file recorded');
    const [v2, v1] = (await versions()).map((v) => v.hash);
    const cur = await b.trigger('ver');
    await b.runEnded('ver', cur);

    await s.login('admin');
    const nodes = async () => (await p.locator('[data-testid="graph-node"]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-task')))).sort();
    // the old run: its version's graph, with the task removed since
    await s.goto(`#/dags/ver?run=${encodeURIComponent(old)}`);
    await until(async () => (await nodes()).join() === 'gone,start', 'the old run\'s graph');
    assert.equal(await p.locator('[data-testid="graph-node"][data-task="gone"]')
        .getAttribute('data-state'), 'success');
    // the new run, picked in the run selector: the graph is redrawn from its version
    await s.byId('run-selector').selectOption(cur);
    await until(async () => (await nodes()).join() === 'start', 'the new run\'s graph');
    // the old run's page: its critical path follows its own edges (start, then gone)
    await s.goto(`#/dags/ver/runs/${encodeURIComponent(old)}`);
    await until(async () => /start.*gone/.test(await s.byId('critical-path').textContent()),
        'the critical path start -> gone');

    // the Code tab: the current source with line numbers, both versions in the picker
    await s.goto('#/dags/ver');
    await s.byId('view-code').click();
    await until(() => p.url().includes('view=code'), 'view=code in the URL');
    const code = s.byId('code');
    await code.waitFor();
    assert.equal(await code.innerText().then((x) => x.includes('echo two')), true);
    assert.deepEqual(await p.locator('[data-testid="code"] .code-line')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-ln'))), ['1', '2', '3', '4']);
    const opts = await s.byId('version-selector').locator('option')
        .evaluateAll((els) => els.map((e) => e.value));
    assert.deepEqual(opts, [v2, v1]);
    // the diff of the old version against the current one: the changed line, the removed task
    await s.byId('version-compare').selectOption(v1);
    await s.byId('code-diff').waitFor();
    const lines = await p.locator('[data-testid="diff-line"]').evaluateAll((els) =>
        els.map((e) => [e.getAttribute('data-kind'), e.textContent.slice(2).trimEnd()]));
    assert.deepEqual(lines.filter(([k]) => k === 'add'), [['add', '    run: echo two']]);
    assert.deepEqual(lines.filter(([k]) => k === 'del').map(([, x]) => x),
        ['    run: echo one', '  gone:', '    needs: [start]', '    run: sleep 0.3']);
    assert.match(await s.byId('diff-summary').textContent(), /\+1 −4/);
    // the old version alone
    await s.byId('version-compare').selectOption('');
    await s.byId('version-selector').selectOption(v1);
    await until(async () => (await code.innerText()).includes('gone:'), 'the old source');
    await finish(b, s);
});

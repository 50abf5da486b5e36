'use strict';
/*
 * notify.test.js - the run page's Notifications card (SPEC section 13): the deliveries of a
 * run's hooks as the store records them. A webhook receiver on 127.0.0.1 (node's http server,
 * in this process) answers 200 on /ok and 500 on /down; the home's baram.yaml names both, the
 * DAG's task hook notifies the first and its on_failure the second (no retries): the page
 * shows one sent and one failed row, with their status codes.
 */
const { after, before, test } = require('node:test');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { assert, finish, launchBrowser, setup } = require('./lib/harness');

let browser;
let server;
let port;
before(async () => {
    browser = await launchBrowser();
    server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
            res.writeHead(req.url.startsWith('/ok') ? 200 : 500, { 'Content-Length': '2' });
            res.end('ok');
        });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
});
after(async () => {
    if (browser) await browser.close();
    if (server) server.close();
});

const sel = (id, a = {}) => `[data-testid="${id}"]` +
    Object.entries(a).map(([k, v]) => `[data-${k}="${v}"]`).join('');

test('N1. run page: the Notifications card lists each delivery with its state and status',
    { timeout: 120_000 }, async (t) => {
        const dag = (b) => {
            fs.appendFileSync(path.join(b.home, 'baram.yaml'),
                `\nnotifiers:\n  ops: {webhook: "http://127.0.0.1:${port}/ok"}\n` +
                `  down: {webhook: "http://127.0.0.1:${port}/down", retries: 0}\n`);
            return 'dag: notes\non_failure: {notify: down}\ntasks:\n' +
                '  a: {run: "true", on_success: {notify: ops}}\n' +
                '  b: {run: "exit 3", needs: [a]}\n';
        };
        const { b, s } = await setup(t, browser, { name: 'notify', dags: { 'notes.yaml': dag } });
        const p = s.page;
        b.open('notes');
        const runId = await b.trigger('notes');
        assert.equal((await b.runEnded('notes', runId)).state, 'failed');
        await s.login('admin');
        await s.goto(`#/dags/notes/runs/${encodeURIComponent(runId)}`);
        await p.locator(sel('delivery-row', { hook: 'on_failure', state: 'failed' })).waitFor();
        const rows = await p.locator(sel('delivery-row')).evaluateAll((els) => els.map((e) => ({
            hook: e.dataset.hook, state: e.dataset.state, notifier: e.dataset.notifier,
            cells: [...e.querySelectorAll('td')].map((td) => td.textContent.trim()),
        })));
        rows.sort((x, y) => x.hook.localeCompare(y.hook));
        assert.deepEqual(rows.map((r) => [r.hook, r.notifier, r.state]),
            [['on_failure', 'down', 'failed'], ['on_success', 'ops', 'sent']], JSON.stringify(rows));
        assert.equal(rows[0].cells[6], '500', JSON.stringify(rows[0]));
        assert.equal(rows[1].cells[1], 'a', JSON.stringify(rows[1]));
        assert.equal(rows[1].cells[6], '200', JSON.stringify(rows[1]));
        await finish(b, s);
    });

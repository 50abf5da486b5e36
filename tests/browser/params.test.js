'use strict';
/*
 * params.test.js - the Trigger dialog as a form generated from the DAG's typed params (SPEC
 * section 13): a field per param (number with min/max, select for an enum, checkbox for a
 * boolean, text for a string, JSON for an array), defaults filled and descriptions shown; a
 * bad value is stopped by the form, one the form lets through is refused by the server and
 * its message shown; the run made gets the typed conf (read back through the API); the
 * "Raw JSON" toggle carries the values over and still triggers. One `baram standalone`.
 */
const { after, before, test } = require('node:test');
const { assert, finish, httpStatus, launchBrowser, setup, until } = require('./lib/harness');
const { sel } = require('./lib/page');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const OLGA = { name: 'olga', role: 'operator', password: 'olga-pw-1' };

const TYPED = `dag: typed
params:
  limit: {type: integer, default: 100, minimum: 1, maximum: 1000, description: Rows per batch}
  mode: {type: string, enum: [fast, slow], default: fast}
  day: {type: string, pattern: '^[0-9]{4}-[0-9]{2}$', default: "2026-01"}
  code: {type: string, pattern: '^[[:upper:]]+$', default: AB}
  dry: {type: boolean, default: false}
  tags: {type: array, default: [a]}
  region: eu
tasks:
  show:
    run: "echo {{ params.limit }}"
`;

test('15. trigger form: typed fields with defaults, the form\'s and the server\'s errors, '
    + 'the typed conf, and the raw JSON path', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'params', dags: { 'typed.yaml': TYPED },
        users: [OLGA] });
    const p = s.page;
    await s.login(OLGA.name);
    const row = p.locator(sel('dag-row', { dag: 'typed' }));
    await row.waitFor();
    await row.getByTestId('dag-trigger').click();
    const dialog = s.byId('trigger-dialog');
    await dialog.waitFor({ state: 'visible' });

    // the fields: their kinds, defaults, limits and descriptions
    const limit = s.byId('trigger-param-limit');
    await limit.waitFor();
    assert.equal(await limit.getAttribute('type'), 'number');
    assert.equal(await limit.getAttribute('min'), '1');
    assert.equal(await limit.getAttribute('max'), '1000');
    assert.equal(await limit.inputValue(), '100');
    assert.match(await s.byId('trigger-param-desc-limit').textContent(), /Rows per batch/);
    assert.equal(await s.byId('trigger-param-mode').evaluate((e) => e.tagName), 'SELECT');
    assert.deepEqual(await p.locator(`${sel('trigger-param-mode')} option`).allTextContents(),
        ['fast', 'slow']);
    assert.equal(await s.byId('trigger-param-dry').getAttribute('type'), 'checkbox');
    assert.equal(await s.byId('trigger-param-dry').isChecked(), false);
    assert.equal(await s.byId('trigger-param-day').inputValue(), '2026-01');
    assert.equal(await s.byId('trigger-param-tags').inputValue(), '["a"]');
    assert.equal(await s.byId('trigger-param-region').inputValue(), 'eu');
    assert.equal(await s.byId('trigger-conf').isVisible(), false, 'the raw box shows in form mode');
    await s.shot('trigger-form');

    // a value the form refuses: its message by the field, no request, no run
    await limit.fill('0');
    await s.byId('trigger-submit').click();
    await until(async () => /0 is less than the minimum 1/.test(
        await s.byId('trigger-param-error-limit').textContent()), 'the form\'s limit error');
    assert.equal(await limit.getAttribute('aria-invalid'), 'true');
    assert.ok(await dialog.isVisible());
    assert.equal((await b.runs('typed')).length, 0, 'a run was made from a bad form');

    // a value only the server refuses (a POSIX class the form leaves to it): its 400 is shown
    await limit.fill('5');
    await s.byId('trigger-param-code').fill('ab');
    await s.byId('trigger-submit').click();
    await until(async () => /param 'code': "ab" does not match the pattern/.test(
        await s.byId('trigger-error').textContent()), 'the server\'s pattern error');
    assert.match(await s.byId('trigger-param-error-code').textContent(), /does not match/);
    assert.equal((await b.runs('typed')).length, 0, 'a run was made from a refused conf');

    // good values: the run gets the typed conf (only what differs from the defaults)
    await s.byId('trigger-param-code').fill('XY');
    await s.byId('trigger-param-mode').selectOption({ label: 'slow' });
    await s.byId('trigger-param-dry').check();
    await s.byId('trigger-param-tags').fill('["x", 2]');
    await s.byId('trigger-submit').click();
    await dialog.waitFor({ state: 'hidden' });
    const first = await until(async () => { const r = await b.runs('typed'); return r.length === 1 && r[0]; },
        'the run triggered from the form');
    const run = await b.run('typed', first.run_id);
    assert.deepEqual(run.conf, { limit: 5, code: 'XY', mode: 'slow', dry: true, tags: ['x', 2] });

    // the raw JSON path: the form's values carried over, edited, triggered
    await row.getByTestId('dag-trigger').click();
    await dialog.waitFor({ state: 'visible' });
    await s.byId('trigger-param-limit').fill('7');
    await s.byId('trigger-raw-toggle').check();
    const raw = s.byId('trigger-conf');
    await raw.waitFor();
    assert.deepEqual(JSON.parse(await raw.inputValue()), { limit: 7 });
    await raw.fill('{"limit": 8, "region": "us"}');
    // back to the form and to raw again: the values go both ways
    await s.byId('trigger-raw-toggle').uncheck();
    assert.equal(await s.byId('trigger-param-limit').inputValue(), '8');
    assert.equal(await s.byId('trigger-param-region').inputValue(), 'us');
    await s.byId('trigger-raw-toggle').check();
    await raw.fill('{"limit": 9, "region": "us"}');
    await s.byId('trigger-submit').click();
    await dialog.waitFor({ state: 'hidden' });
    const second = await until(async () => {
        const r = await b.runs('typed');
        return r.length === 2 && r.find((x) => x.run_id !== first.run_id);
    }, 'the run triggered from raw JSON');
    assert.deepEqual((await b.run('typed', second.run_id)).conf, { limit: 9, region: 'us' });

    await finish(b, s, httpStatus(400));
});

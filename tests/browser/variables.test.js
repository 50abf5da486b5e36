'use strict';
/*
 * variables.test.js - the Variables page (#/variables, SPEC section 13). 20: a viewer has no
 * Variables link and sees a 403 message on the page; an admin adds a plain variable and a
 * secret, sees the secret only as a badge (its value never reaches the browser: not in the
 * page nor in any API answer the page read), edits the secret by typing a new value, and
 * deletes a variable after a confirmation; the CLI sees each change.
 */
const { after, before, test } = require('node:test');
const { assert, finish, launchBrowser, setup, until } = require('./lib/harness');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const SECRET = 'ui-s3cr3t-value';

test('20. variables page: admins only, add, a secret never shown, edit, delete with a confirm',
    { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'variables',
        users: [{ name: 'vera', role: 'viewer', password: 'vera-pw-12345' }] });
    const p = s.page;
    const bodies = [];
    p.on('response', async (r) => {
        if (r.url().includes('/api/v1/variables'))
            bodies.push(await r.text().catch(() => ''));
    });

    // a viewer: no nav link, and the page says 403
    await s.login('vera');
    assert.equal(await s.byId('nav-variables').count(), 0, 'viewer sees the Variables link');
    await s.goto('#/variables');
    await s.byId('variables-forbidden').waitFor();
    assert.match(await s.byId('variables-forbidden').innerText(), /403/);
    await s.byId('logout').click();
    await until(() => p.url().includes('#/login'), 'back to the login page');

    // an admin: add a plain variable and a secret
    await s.login('admin');
    await s.byId('nav-variables').click();
    await until(() => p.url().includes('#/variables'), 'the #/variables route');
    await s.byId('variables-empty').waitFor();
    await s.byId('var-key').fill('region');
    await s.byId('var-value').fill('eu-west');
    await s.byId('var-save').click();
    await p.locator('[data-testid="var-row"][data-key="region"]').waitFor();
    await s.byId('var-key').fill('api_token');
    await s.byId('var-value').fill(SECRET);
    await s.byId('var-secret').check();
    await s.byId('var-save').click();
    const secretRow = p.locator('[data-testid="var-row"][data-key="api_token"]');
    await secretRow.waitFor();
    assert.equal(await secretRow.getAttribute('data-secret'), 'true');
    assert.equal(await secretRow.getByTestId('var-secret-badge').count(), 1);
    assert.equal(await p.locator('[data-testid="var-row"][data-key="region"]')
        .getByTestId('var-shown').innerText(), 'eu-west');
    assert.equal(b.cli(['variables', 'get', 'region', '--home', b.home]).trim(), 'eu-west');

    // editing the secret starts empty and needs a new value
    await secretRow.getByTestId('var-edit').click();
    assert.equal(await s.byId('var-value').inputValue(), '');
    assert.equal(await s.byId('var-key').getAttribute('readonly'), '');
    await s.byId('var-value').fill(SECRET + '-2');
    await s.byId('var-save').click();
    await until(async () => (await s.byId('var-key').inputValue()) === '', 'the form cleared');
    const listed = JSON.parse(b.cli(['variables', 'list', '--json', '--home', b.home]));
    const tok = listed.variables.find((v) => v.key === 'api_token');
    assert.deepEqual([tok.secret, tok.value, tok.updated_by], [true, '***', 'admin']);

    // delete with a confirmation: cancel keeps it, OK removes it
    const regionRow = p.locator('[data-testid="var-row"][data-key="region"]');
    await regionRow.getByTestId('var-delete').click();
    await s.byId('confirm-cancel').click();
    assert.equal(await regionRow.count(), 1);
    await regionRow.getByTestId('var-delete').click();
    await s.byId('confirm-ok').click();
    await regionRow.waitFor({ state: 'detached' });
    assert.equal(await s.byId('variables-count').innerText(), '1 variable');

    // the secret never reached the browser
    const html = await p.content();
    assert.ok(!html.includes(SECRET), 'the secret is in the page');
    assert.ok(bodies.length > 0 && bodies.every((x) => !x.includes(SECRET)),
              'an API answer held the secret');
    await finish(b, s);
});

'use strict';
/*
 * login.test.js - logging in and out of baram's web UI (a logout revokes the token on
 * the server), and what a 401 does (UI-CONTRACT.md: Auth). One real `baram standalone` per test, Chromium headless.
 */
const { after, before, test } = require('node:test');
const { assert, finish, httpStatus, launchBrowser, setup, until } = require('./lib/harness');
const dags = require('./lib/dags');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const OLGA = { name: 'olga', role: 'operator', password: 'olga-pw-1' };

/* The JWT payload the page keeps in sessionStorage 'baram.token' (null when none). */
async function storedToken(page) {
    return page.evaluate(() => sessionStorage.getItem('baram.token'));
}

function jwtPayload(tok) {
    return JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString('utf8'));
}

test('1. login: a bad password shows login-error, the right one lands on the DAG list with '
    + 'whoami; logout returns to login; a 401 sends the user back to login', { timeout: 120_000 }, async (t) => {
    const { b, s } = await setup(t, browser, { name: 'login', dags: { 'flow.yaml': dags.flow }, users: [OLGA] });
    const p = s.page;

    // not logged in: the DAG list route leads to the login form
    await s.goto('#/');
    await s.byId('login-form').waitFor();
    await until(() => p.url().includes('#/login'), 'the #/login route');
    await s.shot('login');

    // a wrong password: login-error, no token, still on the login page
    await s.byId('login-username').fill(OLGA.name);
    await s.byId('login-password').fill('not-the-password');
    await s.byId('login-submit').click();
    await s.byId('login-error').waitFor({ state: 'visible' });
    assert.notEqual((await s.byId('login-error').innerText()).trim(), '', 'login-error is empty');
    assert.equal(await storedToken(p), null, 'a failed login stored a token');
    assert.ok(p.url().includes('#/login'), `left the login page: ${p.url()}`);

    // the right password: the DAG list, whoami with name and role, a token for olga
    await s.byId('login-password').fill(OLGA.password);
    await s.byId('login-submit').click();
    await s.byId('whoami').waitFor();
    await p.locator('[data-testid="dag-row"][data-dag="flow"]').waitFor();
    const who = await s.byId('whoami').textContent();
    assert.match(who, /olga/i, `whoami: ${who}`);
    assert.match(who, /operator/i, `whoami: ${who}`);
    const hash = await p.evaluate(() => location.hash);
    assert.ok(hash === '#/' || hash === '' || hash === '#', `the DAG list is at #/, not ${hash}`);
    const tok = await storedToken(p);
    assert.ok(tok, 'no token in sessionStorage baram.token');
    assert.equal(jwtPayload(tok).sub, 'olga');

    // logout: the server revokes the token (POST /api/v1/auth/logout), so a copy of it kept
    // elsewhere stops working too; back to the login form, token gone; the DAG list now leads
    // to login again
    const before = await fetch(`${b.base}/api/v1/dags`, { headers: { Authorization: `Bearer ${tok}` } });
    assert.equal(before.status, 200, 'the token did not work before the logout');
    const loggedOut = p.waitForResponse((r) => r.url().endsWith('/api/v1/auth/logout'));
    await s.byId('logout').click();
    assert.equal((await loggedOut).status(), 204, 'the logout button did not revoke the token');
    const copy = await fetch(`${b.base}/api/v1/dags`, { headers: { Authorization: `Bearer ${tok}` } });
    assert.equal(copy.status, 401, 'a copy of the token still works after logout');
    await s.byId('login-form').waitFor();
    await until(() => p.url().includes('#/login'), 'the #/login route after logout');
    assert.equal(await storedToken(p), null, 'logout kept the token');
    await s.goto('#/');
    await s.byId('login-form').waitFor();
    assert.equal(await s.byId('whoami').count(), 0, 'whoami shown while logged out');

    // a token the server rejects (bad signature, not expired for the page): any 401 from
    // the API clears it and goes to login with "session expired, log in again"
    await s.login(OLGA.name, OLGA.password);
    await p.locator('[data-testid="dag-row"][data-dag="flow"]').waitFor();
    const good = await storedToken(p);
    const [h, pl, sig] = good.split('.');
    const badSig = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    await p.evaluate((v) => sessionStorage.setItem('baram.token', v), `${h}.${pl}.${badSig}`);
    // the API really refuses that token
    const r = await fetch(`${b.base}/api/v1/dags`, { headers: { Authorization: `Bearer ${h}.${pl}.${badSig}` } });
    assert.equal(r.status, 401);
    await p.reload();
    await s.byId('login-form').waitFor();
    await until(() => p.url().includes('#/login'), 'the #/login route after a 401');
    await s.byId('login-error').waitFor({ state: 'visible' });
    assert.match(await s.byId('login-error').innerText(), /session expired/i);
    assert.equal(await storedToken(p), null, 'the rejected token was kept');

    await finish(b, s, httpStatus(401));
});

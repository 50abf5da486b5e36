'use strict';
/*
 * harness.js - what every browser test of baram's web UI stands on.
 *
 * Key idea: nothing is faked. Each test makes a temporary folder with a home
 * (`baram init`, users made with `baram users add`) and a DAG folder, starts
 * its own real `baram standalone` on a free loopback port, drives Debian's
 * Chromium (playwright-core, headless) against it, checks outcomes both in the
 * page and through the REST API or the CLI, and stops the daemon with SIGTERM
 * (a non-zero exit or an AddressSanitizer report fails the test).
 *
 * Every page a test opens is watched: console errors, uncaught exceptions and
 * Content-Security-Policy violations (reported by a listener injected before
 * any page script, and by Chromium's own console message) are collected and
 * checked at the end of the test by Session.assertClean().
 *
 * Waits are always conditions with generous timeouts (the CI binary is an
 * ASan build on a slow 2-core machine), never fixed sleeps.
 *
 * Environment: BARAM_BIN (default build/h-btest/baram), CHROMIUM (default
 * /usr/bin/chromium), BARAM_WEB_DIR is passed to the daemon when set (for UI
 * development only; scripts/browser-tests unsets it so the embedded files are
 * tested).
 */
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = process.env.BARAM_BIN || path.join(ROOT, 'build', 'h-btest', 'baram');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/* Screenshots go to BARAM_SCREENSHOTS (scripts/browser-tests: the results folder; `make
 * screenshots`: docs/screenshots, the README's). */
const SHOTS = process.env.BARAM_SCREENSHOTS || path.join(ROOT, 'docs', 'screenshots');
const WAIT = 30_000;          // default wait for anything to show up
const ADMIN_PASSWORD = 'admin-pw-123';

/* A TCP port free right now on 127.0.0.1. */
function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

/*
 * Polls async cond() every 50 ms until it returns something truthy (returned); throws at the
 * timeout, or at once when cond throws an error marked fatal (others are retried).
 */
async function until(cond, what, timeout = WAIT) {
    const end = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            last = await cond();
            if (last)
                return last;
        } catch (e) {
            if (e.fatal)
                throw e;
            last = e;
        }
        if (Date.now() > end)
            throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${
                last instanceof Error ? last.message : JSON.stringify(last)})`);
        await new Promise((r) => setTimeout(r, 50));
    }
}

/*
 * One baram home + DAG folder + standalone daemon, in a fresh temporary folder.
 * dags: {FILE_NAME: yaml text}; users: [{name, role, password}].
 */
let databases = 0;

/*
 * With BARAM_TEST_DB=pg (scripts/test-all's second browser pass) each home's store is a
 * fresh database of the PostgreSQL cluster whose socket folder BARAM_TEST_PG names (made by
 * scripts/pg-cluster, with its empty template); else the home's SQLite file.
 */
function freshDatabase() {
    if (process.env.BARAM_TEST_DB !== 'pg')
        return null;
    const sock = process.env.BARAM_TEST_PG;
    if (!sock)
        throw new Error('BARAM_TEST_DB=pg needs BARAM_TEST_PG (a cluster of scripts/pg-cluster)');
    const name = `btest_${process.pid}_${++databases}`;
    execFileSync('psql', ['-h', sock, '-U', 'postgres', '-d', 'postgres', '-qAt', '-c',
        `CREATE DATABASE ${name} TEMPLATE baram_template`], { stdio: ['ignore', 'pipe', 'pipe'] });
    return { sock, name, url: `postgresql:///${name}?host=${sock}&user=postgres` };
}

class Baram {
    constructor(name) {
        this.db = freshDatabase();
        this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `baram-btest-${name}-`));
        this.home = path.join(this.tmp, 'home');
        this.dags = path.join(this.tmp, 'dags');
        this.gates = path.join(this.tmp, 'gates');
        fs.mkdirSync(this.dags);
        fs.mkdirSync(this.gates);
        this.proc = null;
        this.stderr = '';
        this.exit = null;
        this.tokens = new Map();
        this.extraEnv = {}; /* for every command and the daemon (setup's env) */
    }

    env(extra = {}) {
        const env = { ...process.env, BARAM_HOME: this.home, ...this.extraEnv, ...extra };
        delete env.BARAM_PASSWORD;
        if (this.db)
            env.BARAM_DB = this.db.url;
        return env;
    }

    /* Runs the baram CLI synchronously; returns stdout (throws on a non-zero exit). */
    cli(args, { input, env } = {}) {
        return execFileSync(BIN, args, {
            cwd: this.tmp, env: this.env(env), input, encoding: 'utf8',
            stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000,
        });
    }

    init(users = []) {
        this.cli(['init', '--home', this.home], { env: { BARAM_ADMIN_PASSWORD: ADMIN_PASSWORD } });
        this.passwords = new Map([['admin', ADMIN_PASSWORD]]);
        for (const u of users) {
            this.cli(['users', 'add', u.name, '--role', u.role, '--password-stdin', '--home', this.home],
                { input: `${u.password}\n` });
            this.passwords.set(u.name, u.password);
        }
    }

    writeDag(file, text) {
        fs.writeFileSync(path.join(this.dags, file), text);
    }

    /* A file the gated tasks wait for (see dags.js); creating it lets them go on. */
    gate(name) {
        return path.join(this.gates, name);
    }

    open(name) {
        fs.writeFileSync(this.gate(name), 'go\n');
    }

    /* Starts the daemon; on the given port (a restart) or a free one. */
    async start(port) {
        this.port = port || await freePort();
        this.stderr = '';
        this.exit = null;
        this.base = `http://127.0.0.1:${this.port}`;
        const logFile = path.join(this.tmp, 'daemon.log');
        const log = fs.openSync(logFile, 'a');
        this.logFile = logFile;
        this.proc = spawn(BIN, ['standalone', '--home', this.home, '--dags', this.dags,
            '--listen', `127.0.0.1:${this.port}`, '--grace', '2s'], {
            cwd: this.tmp, env: this.env(), stdio: ['ignore', 'ignore', 'pipe'],
        });
        this.proc.stderr.on('data', (d) => {
            this.stderr += d.toString();
            fs.writeSync(log, d);
        });
        this.exited = new Promise((resolve) => {
            this.proc.on('exit', (code, signal) => {
                this.exit = { code, signal };
                fs.closeSync(log);
                resolve(this.exit);
            });
        });
        await until(() => {
            if (this.exit)
                throw Object.assign(new Error(`baram standalone exited early (${JSON.stringify(this.exit)}):\n${
                    this.stderr}`), { fatal: true });
            return this.stderr.includes('msg="scheduler up"') && this.stderr.includes('msg="api listening"');
        }, 'the daemon\'s "scheduler up" and "api listening" log lines');
        return this;
    }

    /*
     * SIGTERM, wait for the exit; throws when it fails to stop, exits non-zero or ASan spoke.
     * The temporary folder is removed unless keep (a restart follows) or BTEST_KEEP.
     */
    async stop({ keep = false } = {}) {
        if (!this.proc)
            return;
        if (!this.exit)
            this.proc.kill('SIGTERM');
        const timer = setTimeout(() => this.proc.kill('SIGKILL'), 30_000);
        const ex = await this.exited;
        clearTimeout(timer);
        this.proc = null;
        const asan = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(this.stderr);
        if (ex.code !== 0 || asan)
            throw new Error(`baram standalone did not stop cleanly (${JSON.stringify(ex)}); log ${this.logFile}:\n${
                this.stderr.slice(-4000)}`);
        if (!keep && !process.env.BTEST_KEEP) {
            fs.rmSync(this.tmp, { recursive: true, force: true });
            if (this.db)
                execFileSync('psql', ['-h', this.db.sock, '-U', 'postgres', '-d', 'postgres', '-qAt',
                    '-c', `DROP DATABASE IF EXISTS ${this.db.name} WITH (FORCE)`],
                    { stdio: ['ignore', 'pipe', 'pipe'] });
        }
    }

    /* Runs one SQL statement on the home's store: psql on PostgreSQL, sqlite3 on the SQLite
     * file; returns its output (rows as text). Times differ: pg and sqlite give each form. */
    sql({ pg, sqlite }) {
        if (this.db)
            return execFileSync('psql', ['-h', this.db.sock, '-U', 'postgres', '-d', this.db.name,
                '-qAt', '-v', 'ON_ERROR_STOP=1', '-c', pg], { encoding: 'utf8' });
        return execFileSync('sqlite3', ['-bail', '-cmd', '.timeout 10000', path.join(this.home, 'baram.db'), sqlite],
            { encoding: 'utf8' });
    }

    /* Kills the daemon if still running (cleanup after a failure); keeps the folder for a look. */
    kill() {
        if (this.proc && !this.exit)
            this.proc.kill('SIGKILL');
    }

    async token(user = 'admin') {
        if (!this.tokens.has(user)) {
            const r = await fetch(`${this.base}/api/v1/auth/token`, {
                method: 'POST', headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ username: user, password: this.passwords.get(user) }),
            });
            const text = await r.text();
            assert.equal(r.status, 200, `token for ${user}: ${text}`);
            this.tokens.set(user, JSON.parse(text).access_token);
        }
        return this.tokens.get(user);
    }

    /* The REST API as admin (or user); returns {status, body} with body parsed when JSON. */
    async api(method, p, body, user = 'admin') {
        const r = await fetch(`${this.base}/api/v1${p}`, {
            method,
            headers: { Authorization: `Bearer ${await this.token(user)}`,
                ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
            body: body !== undefined ? JSON.stringify(body) : undefined,
        });
        const text = await r.text();
        let parsed = text;
        try {
            parsed = JSON.parse(text);
        } catch { /* not JSON */ }
        return { status: r.status, body: parsed };
    }

    async get(p) {
        const r = await this.api('GET', p);
        assert.equal(r.status, 200, `GET ${p}: ${JSON.stringify(r.body)}`);
        return r.body;
    }

    async trigger(dag, conf = {}) {
        const r = await this.api('POST', `/dags/${encodeURIComponent(dag)}/runs`, { conf });
        assert.ok(r.status >= 200 && r.status < 300, `trigger ${dag}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body.run_id;
    }

    async runs(dag) {
        return (await this.get(`/dags/${encodeURIComponent(dag)}/runs?limit=100`)).runs;
    }

    async run(dag, runId) {
        return this.get(`/dags/${encodeURIComponent(dag)}/runs/${encodeURIComponent(runId)}`);
    }

    async task(dag, runId, task) {
        return this.get(`/dags/${encodeURIComponent(dag)}/runs/${encodeURIComponent(runId)}/tasks/${
            encodeURIComponent(task)}`);
    }

    /* Waits for the run to end; returns it. */
    async runEnded(dag, runId, timeout = 60_000) {
        return until(async () => {
            const r = await this.run(dag, runId);
            return ['success', 'failed', 'cancelled'].includes(r.state) && r;
        }, `run ${dag}/${runId} to end`, timeout);
    }
}

/* One Chromium for a test file. */
async function launchBrowser() {
    if (!fs.existsSync(CHROMIUM))
        throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium)`);
    return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/*
 * A browser context (own sessionStorage) on one Baram, with every page's console
 * errors, page errors and CSP violations collected in this.problems.
 */
class Session {
    constructor(browser, baram, viewport = { width: 1280, height: 800 }) {
        this.browser = browser;
        this.baram = baram;
        this.viewport = viewport;
        this.problems = [];
    }

    async open() {
        this.context = await this.browser.newContext({ viewport: this.viewport });
        this.context.setDefaultTimeout(WAIT);
        await this.context.exposeBinding('__btestCsp', (_src, v) => {
            this.problems.push({ kind: 'csp', text: v });
        });
        await this.context.addInitScript(() => {
            document.addEventListener('securitypolicyviolation', (e) => {
                window.__btestCsp(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${
                    e.sourceFile}:${e.lineNumber}`);
            });
        });
        this.page = await this.context.newPage();
        this.watch(this.page);
        return this;
    }

    watch(page) {
        page.on('console', (m) => {
            if (m.type() === 'error') {
                const loc = m.location();
                this.problems.push({ kind: 'console', text: m.text(), url: loc && loc.url });
            }
        });
        page.on('pageerror', (e) => this.problems.push({ kind: 'pageerror', text: String(e && e.stack || e) }));
    }

    /*
     * Fails when the pages logged a console error, threw, or hit the CSP. allow: regexps
     * for console messages a test provokes on purpose (e.g. the 401 of a wrong password,
     * which Chromium logs as "Failed to load resource: ... 401").
     */
    assertClean(allow = []) {
        const bad = this.problems.filter((p) => !(p.kind === 'console' && allow.some((re) => re.test(p.text))));
        assert.deepEqual(bad, [], `the page logged errors or CSP violations:\n${
            bad.map((p) => `  [${p.kind}] ${p.text}${p.url ? ` (${p.url})` : ''}`).join('\n')}`);
    }

    async close() {
        if (this.context) {
            const c = this.context;
            this.context = null;
            await c.close();
        }
    }

    url(hash = '#/') {
        return `${this.baram.base}/${hash}`;
    }

    async goto(hash) {
        await this.page.goto(this.url(hash));
    }

    byId(id) {
        return this.page.getByTestId(id);
    }

    /* Logs in through the login form; waits for the DAG list (whoami shown). */
    async login(user, password = this.baram.passwords.get(user)) {
        await this.goto('#/login');
        await this.byId('login-username').fill(user);
        await this.byId('login-password').fill(password);
        await this.byId('login-submit').click();
        await this.byId('whoami').waitFor();
    }

    /* A 1280x800 picture of the page for the README (after any toast has gone). */
    async shot(name) {
        await this.page.locator('[data-testid="toast"]').first().waitFor({ state: 'hidden', timeout: 10_000 })
            .catch(() => {});
        fs.mkdirSync(SHOTS, { recursive: true });
        await this.page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
    }
}

/*
 * The common frame of a test: a Baram with dags and users (and env for its commands and
 * daemon), started; a Session on it.
 * Registers cleanup with t.after. Returns {b, s}.
 */
async function setup(t, browser, { name, dags = {}, users = [], viewport, env = {} } = {}) {
    const b = new Baram(name);
    b.extraEnv = env;
    let s = null;
    t.after(async () => {
        // after a failure the daemon is still up: keep a picture and the page's problems
        if (s && b.proc && s.page && !s.page.isClosed()) {
            await s.page.screenshot({ path: path.join(b.tmp, 'failure.png') }).catch(() => {});
            console.error(`# ${name}: folder kept at ${b.tmp} (failure.png, daemon.log); page problems: ${
                JSON.stringify(s.problems)}; url ${s.page.url()}`);
        }
        if (s)
            await s.close();
        b.kill();
    });
    b.init(users);
    for (const [file, text] of Object.entries(dags))
        b.writeDag(file, typeof text === 'function' ? text(b) : text);
    await b.start();
    s = new Session(browser, b, viewport);
    await s.open();
    return { b, s };
}

/* Ends a test: the page must be clean and the daemon must stop cleanly. */
async function finish(b, s, allow = []) {
    s.assertClean(allow);
    await s.close();
    await b.stop();
}

/* Regexps of console errors Chromium logs for an HTTP status a test provokes on purpose. */
function httpStatus(...codes) {
    return codes.map((c) => new RegExp(`Failed to load resource: the server responded with a status of ${c}\\b`));
}

module.exports = {
    BIN, Baram, Session, WAIT, assert, finish, httpStatus, launchBrowser, setup, until,
};

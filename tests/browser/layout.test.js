'use strict';
/*
 * layout.test.js - at phone width (375x740) and at 1280x800 the DAG list and
 * the run page cause no page-level horizontal scroll (a table may scroll inside
 * its own container), and the login form works from the keyboard alone (Tab
 * reaches the fields and the submit button, Enter submits).
 */
const { after, before, test } = require('node:test');
const { assert, finish, launchBrowser, setup } = require('./lib/harness');
const { sel } = require('./lib/page');
const dags = require('./lib/dags');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

const OLGA = { name: 'olga', role: 'operator', password: 'olga-pw-1' };

/*
 * The page's horizontal overflow: whether the page itself scrolls sideways, and the
 * elements that stick out past the viewport's right edge without an ancestor that
 * scrolls or clips them.
 */
async function overflow(page) {
    return page.evaluate(() => {
        const de = document.documentElement;
        const vw = de.clientWidth;
        const offenders = [];
        for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0 || r.right <= vw + 1)
                continue;
            let a = el.parentElement;
            let contained = false;
            for (; a && a !== document.body; a = a.parentElement) {
                const ox = getComputedStyle(a).overflowX;
                if (ox !== 'visible') {
                    contained = true;
                    break;
                }
            }
            if (!contained) {
                const id = el.getAttribute('data-testid');
                offenders.push(`${el.tagName.toLowerCase()}${id ? `[${id}]` : ''}${
                    el.className && typeof el.className === 'string' ? `.${el.className.split(' ').join('.')}` : ''
                } right=${Math.round(r.right)}`);
            }
        }
        return {
            vw, scrollWidth: Math.max(de.scrollWidth, document.body.scrollWidth),
            pageScrolls: Math.max(de.scrollWidth, document.body.scrollWidth) > vw,
            offenders: offenders.slice(0, 12),
        };
    });
}

function assertFits(o, what) {
    assert.ok(!o.pageScrolls && o.offenders.length === 0,
        `${what}: page-level horizontal overflow (viewport ${o.vw}, scrollWidth ${o.scrollWidth}); sticking out: ${
            JSON.stringify(o.offenders)}`);
}

async function focusedId(page) {
    return page.evaluate(() => document.activeElement && document.activeElement.getAttribute('data-testid'));
}

/* Presses Tab until the element with testid has the focus (at most 20 times); returns the presses. */
async function tabTo(page, testid) {
    for (let i = 1; i <= 20; i++) {
        await page.keyboard.press('Tab');
        if ((await focusedId(page)) === testid)
            return i;
    }
    throw new Error(`Tab never reached ${testid}`);
}

for (const [w, h] of [[375, 740], [1280, 800]]) {
    test(`11. ${w}x${h}: no page-level horizontal scroll on the DAG list and the run page; `
        + 'the login form works from the keyboard', { timeout: 120_000 }, async (t) => {
        const { b, s } = await setup(t, browser, {
            name: `layout${w}`, viewport: { width: w, height: h },
            dags: { 'flow.yaml': dags.flow, 'failing.yaml': dags.failing }, users: [OLGA],
        });
        const p = s.page;
        b.open('flow');
        const runId = await b.trigger('flow');
        await b.runEnded('flow', runId);
        await b.runEnded('failing', await b.trigger('failing'));

        // keyboard only: Tab to the name, type, Tab to the password, type, Tab reaches the
        // submit button; Enter in the password field submits
        await s.goto('#/login');
        await s.byId('login-form').waitFor();
        await tabTo(p, 'login-username');
        await p.keyboard.type(OLGA.name);
        await p.keyboard.press('Tab');
        assert.equal(await focusedId(p), 'login-password', 'Tab from the name does not reach the password');
        await p.keyboard.type(OLGA.password);
        await tabTo(p, 'login-submit');
        await p.keyboard.press('Shift+Tab');
        if ((await focusedId(p)) !== 'login-password')
            await s.byId('login-password').focus();
        await p.keyboard.press('Enter');
        await s.byId('whoami').waitFor();

        // the DAG list
        await p.locator(sel('dag-row', { dag: 'flow' })).locator(sel('run-mark')).first().waitFor();
        await p.locator(sel('dag-row', { dag: 'failing' })).waitFor();
        assertFits(await overflow(p), `DAG list at ${w}x${h}`);
        // its controls are reachable by keyboard too
        await tabTo(p, 'dag-trigger');

        // the run page
        await s.goto(`#/dags/flow/runs/${encodeURIComponent(runId)}`);
        await p.locator(sel('gantt-bar')).nth(3).waitFor();
        await p.locator(sel('task-row')).nth(3).waitFor();
        assertFits(await overflow(p), `run page at ${w}x${h}`);
        await tabTo(p, 'task-clear');
        if (w === 375)
            await p.screenshot({ path: require('node:path').join(b.tmp, 'phone-run.png'), fullPage: true });
        await finish(b, s);
    });
}

'use strict';
/*
 * page.js - small in-page probes shared by the browser tests: a marker that
 * tells whether the page was reloaded, a recorder of every data-state each
 * element with a given testid took (MutationObserver, so a state that lasts
 * one frame is not missed), and the on/off state of a toggle.
 */

/* Sets a marker on window; hasMarker() is false after any reload or full navigation. */
async function setMarker(page) {
    await page.evaluate(() => { window.__btestMarker = 'still-the-same-page'; });
}

async function hasMarker(page) {
    return page.evaluate(() => window.__btestMarker === 'still-the-same-page');
}

/*
 * Records, per data-task, the sequence of data-state values of the elements with this
 * testid (also ones added later). Read it back with seenStates(page, testid).
 */
async function recordStates(page, testid) {
    await page.evaluate((tid) => {
        const seen = (window.__btestSeen = window.__btestSeen || {});
        const log = (seen[tid] = seen[tid] || {});
        const note = (el) => {
            if (!el.getAttribute || el.getAttribute('data-testid') !== tid)
                return;
            const task = el.getAttribute('data-task');
            const st = el.getAttribute('data-state');
            const l = (log[task] = log[task] || []);
            if (l[l.length - 1] !== st)
                l.push(st);
        };
        const scan = (root) => {
            note(root);
            if (root.querySelectorAll)
                root.querySelectorAll(`[data-testid="${tid}"]`).forEach(note);
        };
        scan(document.documentElement);
        new MutationObserver((muts) => {
            for (const m of muts) {
                if (m.type === 'attributes')
                    note(m.target);
                else
                    m.addedNodes.forEach(scan);
            }
        }).observe(document.documentElement, {
            subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-testid'],
        });
    }, testid);
}

async function seenStates(page, testid) {
    return page.evaluate((tid) => (window.__btestSeen || {})[tid] || {}, testid);
}

/* true/false for a toggle: a checkbox's checked, else aria-pressed (or aria-checked). */
async function toggleOn(locator) {
    return locator.evaluate((el) => {
        if (el.tagName === 'INPUT' && (el.type === 'checkbox' || el.type === 'radio'))
            return el.checked;
        const v = el.getAttribute('aria-pressed') ?? el.getAttribute('aria-checked');
        if (v === null)
            throw new Error('toggle has neither checked nor aria-pressed');
        return v === 'true';
    });
}

/* Locator of the element with testid and data-ATTR=VALUE pairs (e.g. {task: 'load'}). */
function sel(testid, attrs = {}) {
    let s = `[data-testid="${testid}"]`;
    for (const [k, v] of Object.entries(attrs))
        s += `[data-${k}="${String(v).replace(/["\\]/g, '\\$&')}"]`;
    return s;
}

module.exports = { hasMarker, recordStates, seenStates, sel, setMarker, toggleOn };

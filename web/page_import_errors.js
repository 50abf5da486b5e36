/*
 * page_import_errors.js - the Import errors page (#/import-errors): every DAG
 * file that failed to load (GET /import-errors), with the file, line and
 * column and the loader's message, grouped by file. The DAG list's banner and
 * the nav (with a count) link here.
 *
 * Key idea: the scheduler records import errors when it reads the DAG folder
 * (a few seconds after a file changes), not as events: the page polls every
 * 5 s, one request at a time, aborted on unmount.
 */

import {get} from './api.js';
import {h, replace} from './dom.js';
import * as fmt from './fmt.js';
import {errorPanel, loading, timeEl} from './ui.js';

const POLL_MS = 5000;

function where(e) {
    return `${e.line ? 'line ' + e.line : ''}${e.line && e.col ? ', column ' + e.col : ''}`;
}

function fileCard(path, list) {
    return h('section', {class: 'panel import-file', testid: 'import-file', 'data-path': path},
             h('h2', {class: 'import-path'}, h('code', null, path)),
             h('ul', {class: 'import-list'}, list.map((e) =>
                 h('li', {testid: 'import-error', class: 'import-error'},
                   h('code', {testid: 'import-error-where'},
                     `${path}${e.line ? ':' + e.line : ''}${e.line && e.col ? ':' + e.col : ''}`),
                   ' ', h('span', {testid: 'import-error-message'}, e.message || ''),
                   e.line ? h('span', {class: 'sr-only'}, ` (${where(e)})`) : null,
                   ' ', h('span', {class: 'muted small'}, 'seen ',
                          timeEl(e.at, fmt.time(e.at)))))));
}

export function mount(root) {
    document.title = 'Import errors · baram';
    let alive = true;
    let timer = null;
    let ctl = null;
    let loaded = false;
    let sig = null;

    const count = h('span', {class: 'muted', testid: 'import-errors-count'});
    const body = h('div', {class: 'import-files'});
    const slot = h('div', {class: 'slot'}, loading());
    replace(root,
            h('div', {class: 'page-head'}, h('div', null, h('h1', null, 'Import errors'), count)),
            h('p', {class: 'muted small'},
              'DAG files the scheduler could not load, as it last read the DAG folder. Fix the ' +
              'file and save it: it disappears from this list once it loads. Refreshed every 5 s.'),
            slot, body);

    function draw(list) {
        const s = JSON.stringify(list);
        if (s === sig) return;
        sig = s;
        const byPath = new Map();
        for (const e of list) {
            const p = e.path || '?';
            if (!byPath.has(p)) byPath.set(p, []);
            byPath.get(p).push(e);
        }
        const n = byPath.size;
        count.textContent = `${n} file${n === 1 ? '' : 's'}, ${list.length} error` +
                            `${list.length === 1 ? '' : 's'}`;
        replace(body, [...byPath].map(([p, l]) => fileCard(p, l)));
        replace(slot, n ? null : h('div', {class: 'panel muted', testid: 'import-errors-empty'},
                                   'No import errors: every DAG file loaded.'));
    }

    async function poll() {
        timer = null;
        const my = ctl = new AbortController();
        try {
            const o = await get('/import-errors?limit=10000', {signal: my.signal});
            if (!alive) return;
            draw(o.import_errors || []);
            loaded = true;
        } catch (e) {
            if (!alive || e.name === 'AbortError' || e.status === 401) return;
            if (!loaded) {
                replace(slot, errorPanel(e, () => { replace(slot, loading()); poll(); }));
                return; /* the Retry button polls again */
            }
        }
        if (alive) timer = setTimeout(poll, POLL_MS);
    }
    poll();

    return {
        unmount() {
            alive = false;
            if (timer) clearTimeout(timer);
            if (ctl) ctl.abort();
        },
    };
}

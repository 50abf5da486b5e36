/*
 * page_workers.js - the Workers page (#/workers): every scheduler and worker
 * registered in the database (GET /workers, the list of `baram workers
 * list`), with its state, queues, slots, running tries and the age of its
 * last heartbeat.
 *
 * Key ideas:
 * - The registry changes by heartbeats, not by events: the page polls
 *   /workers every 2 s (one request at a time, aborted on unmount) and the
 *   ages tick from the last answer in between.
 * - Rows are keyed by name and start time (a worker that re-registers under
 *   its name is a new row; the dead one stays listed). A row whose object did
 *   not change keeps its element; only the age cells are rewritten.
 * - A dead process is drawn in red with a ✗ glyph and the word "dead", a
 *   draining one with ◐ "draining": never colour alone.
 * - No worker at all: a panel says how to start one (on SQLite, that the
 *   scheduler runs the tasks itself: workers need PostgreSQL).
 */

import {get} from './api.js';
import {h, replace} from './dom.js';
import * as fmt from './fmt.js';
import {errorPanel, loading, timeEl} from './ui.js';

const POLL_MS = 2000;

const STATE = {
    active:   {glyph: '●', label: 'active'},
    draining: {glyph: '◐', label: 'draining'},
    dead:     {glyph: '✗', label: 'dead'},
    stopped:  {glyph: '■', label: 'stopped'},
};

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function stateOf(w) {
    return STATE[w.state] ? w.state : 'stopped';
}

function stateBadge(st) {
    return h('span', {class: 'wbadge wk-' + st, testid: 'worker-state', 'data-state': st},
             h('span', {class: 'glyph', 'aria-hidden': 'true'}, STATE[st].glyph),
             h('span', null, STATE[st].label));
}

/* "4 s ago", from the heartbeat to now (a browser clock ahead of the database's: "just now"). */
function age(iso, now) {
    const t = fmt.ms(iso);
    if (isNaN(t)) return '—';
    const s = (now - t) / 1000;
    return s < 1 ? 'just now' : fmt.duration(Math.floor(s)) + ' ago';
}

function row(w, now) {
    const st = stateOf(w);
    const ageEl = h('span', {class: 'worker-age', testid: 'worker-heartbeat'},
                    age(w.heartbeat_at, now));
    const queues = (w.queues || []).map((q) => h('code', {class: 'queue'}, q));
    const tr = h('tr', {testid: 'worker-row', 'data-name': w.name, 'data-role': w.role,
                        'data-state': st, class: 'worker-row wk-row-' + st},
                 h('td', null, h('span', {class: 'worker-name'}, w.name)),
                 h('td', null, w.role),
                 h('td', null, w.hostname, h('span', {class: 'muted small'}, ' pid ' + w.pid)),
                 h('td', {testid: 'worker-queues'}, queues.length ? queues : '—'),
                 h('td', {class: 'num', testid: 'worker-slots'}, String(w.slots)),
                 h('td', {class: 'num', testid: 'worker-running'}, String(w.running)),
                 h('td', null, stateBadge(st)),
                 h('td', null, timeEl(w.heartbeat_at, fmt.time(w.heartbeat_at)), ' ',
                   h('span', {class: 'muted small'}, '(', ageEl, ')')),
                 h('td', null, timeEl(w.started_at, fmt.time(w.started_at))));
    return {tr, ageEl, at: w.heartbeat_at, sig: JSON.stringify(w)};
}

export function mount(root) {
    document.title = 'Workers · baram';
    let alive = true;
    let timer = null;
    let ctl = null;
    let backend = null; /* 'sqlite' | 'postgresql' | null (unknown) */
    let rows = new Map(); /* key -> {tr, ageEl, at, sig} */
    let loaded = false;

    const count = h('span', {class: 'muted', testid: 'workers-count'});
    const tbody = h('tbody');
    const table = h('table', {class: 'table workers-table', testid: 'workers-table'},
                    h('caption', {class: 'sr-only'}, 'Schedulers and workers'),
                    h('thead', null, h('tr', null,
                                       ['Name', 'Role', 'Host', 'Queues', 'Slots', 'Running',
                                        'State', 'Last heartbeat', 'Started'].map((c) =>
                                           h('th', {scope: 'col'}, c)))),
                    tbody);
    const empty = h('div', {class: 'slot'});
    const slot = h('div', {class: 'slot'}, loading());
    const wrap = h('div', {class: 'table-scroll'}, table);
    wrap.hidden = true;
    replace(root,
            h('div', {class: 'page-head'}, h('div', null, h('h1', null, 'Workers'), count)),
            h('p', {class: 'muted small'},
              'Every scheduler and worker registered in the database, schedulers first. A ' +
              'process silent past dead_after is declared dead: its running tries are retried ' +
              'elsewhere. Refreshed every 2 s.'),
            empty, wrap, slot);

    function emptyText() {
        if (backend === 'sqlite')
            return ['no workers: on SQLite ', h('code', null, 'baram standalone'),
                    ' runs the tasks itself (workers need a PostgreSQL database)'];
        return ['no workers: start one with ', h('code', null, 'baram worker')];
    }

    function draw(list) {
        const now = Date.now();
        const next = new Map();
        const trs = [];
        for (const w of list) {
            const key = w.name + ' ' + w.started_at;
            let r = rows.get(key);
            if (!r || r.sig !== JSON.stringify(w)) r = row(w, now);
            else r.ageEl.textContent = age(r.at, now);
            next.set(key, r);
            trs.push(r.tr);
        }
        const same = trs.length === tbody.children.length &&
                     trs.every((tr, i) => tbody.children[i] === tr);
        if (!same) replace(tbody, trs);
        rows = next;
        const nw = list.filter((w) => w.role === 'worker');
        const live = nw.filter((w) => w.state === 'active' || w.state === 'draining');
        const ns = list.length - nw.length;
        count.textContent = `${plural(live.length, 'live worker')} of ${nw.length}, ` +
                            plural(ns, 'scheduler');
        replace(empty, nw.length ? null
                                 : h('div', {class: 'panel muted', testid: 'workers-empty'},
                                     emptyText()));
        wrap.hidden = list.length === 0;
    }

    function tickAges() {
        const now = Date.now();
        for (const r of rows.values()) r.ageEl.textContent = age(r.at, now);
    }

    async function poll() {
        timer = null;
        ctl = new AbortController();
        try {
            if (backend === null) {
                const hl = await get('/health', {signal: ctl.signal}).catch(() => null);
                backend = (hl && hl.database && hl.database.backend) || '';
            }
            const o = await get('/workers?limit=10000', {signal: ctl.signal});
            if (!alive) return;
            draw(o.workers || []);
            if (!loaded) replace(slot);
            loaded = true;
        } catch (e) {
            if (!alive || e.name === 'AbortError' || e.status === 401) return;
            if (!loaded) replace(slot, errorPanel(e, () => { replace(slot, loading()); poll(); }));
            else tickAges();
            if (!loaded) return; /* the Retry button polls again */
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

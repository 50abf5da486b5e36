/*
 * page_pools.js - the Pools page (#/pools): every pool as the scheduler sizes
 * it (GET /pools, the list of `baram pools list`), with its task instances
 * running, queued (holding a slot, not started yet) and waiting for a slot,
 * and a bar of the slots in use. Admins edit a pool's slots in place
 * (PUT /pools/{name}).
 *
 * Key ideas:
 * - The counts change with every task instance: the page polls /pools every
 *   2 s (one request at a time, aborted on unmount), like the Workers page.
 * - Rows are keyed by pool name and updated in place, so a slots field an
 *   admin is typing in is never redrawn under them.
 */

import {get, api, enc, isAdmin} from './api.js';
import {h, replace} from './dom.js';
import {errorPanel, loading, toast, toastError} from './ui.js';

const POLL_MS = 2000;
const SLOTS_MAX = 100000;

/* The width of the bar's parts, in percent of the slots (overfull: of what is in flight). */
function bar(p) {
    const busy = p.running + p.queued;
    const whole = Math.max(p.slots, busy, 1);
    return {running: (100 * p.running) / whole, queued: (100 * p.queued) / whole,
            full: busy >= p.slots};
}

export function mount(root) {
    document.title = 'Pools · baram';
    const admin = isAdmin();
    let alive = true;
    let timer = null;
    let ctl = null;
    let loaded = false;
    const rows = new Map(); /* name -> {tr, cells, input} */

    const count = h('span', {class: 'muted', testid: 'pools-count'});
    const tbody = h('tbody');
    const table = h('table', {class: 'table pools-table', testid: 'pools-table'},
                    h('caption', {class: 'sr-only'}, 'Pools'),
                    h('thead', null, h('tr', null,
                                       ['Pool', 'Slots', 'Running', 'Queued', 'Waiting', 'Open',
                                        'Use', 'Size from'].map((c) =>
                                           h('th', {scope: 'col'}, c)))),
                    tbody);
    const wrap = h('div', {class: 'table-scroll'}, table);
    wrap.hidden = true;
    const slot = h('div', {class: 'slot'}, loading());
    replace(root,
            h('div', {class: 'page-head'}, h('div', null, h('h1', null, 'Pools'), count)),
            h('p', {class: 'muted small'},
              'A pool limits how many task instances run at once. Queued: holding a slot, not ' +
              'started yet; waiting: ready, waiting for a slot. Refreshed every 2 s.' +
              (admin ? ' Change a pool\'s slots and press Enter or Save.' : '')),
            wrap, slot);

    async function save(name, input, btn) {
        const v = input.value.trim();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > SLOTS_MAX) {
            toast(`slots must be a whole number from 0 to ${SLOTS_MAX}`, 'error');
            input.focus();
            return;
        }
        btn.disabled = input.disabled = true;
        try {
            await api('PUT', `/pools/${enc(name)}`, {slots: n});
            toast(`pool ${name}: ${n} slot${n === 1 ? '' : 's'}`);
            input.dataset.dirty = '';
            poll();
        } catch (e) {
            toastError(e);
        } finally {
            btn.disabled = input.disabled = false;
        }
    }

    function makeRow(p) {
        const c = {
            running: h('td', {class: 'num', testid: 'pool-running'}),
            queued: h('td', {class: 'num', testid: 'pool-queued'}),
            scheduled: h('td', {class: 'num', testid: 'pool-scheduled'}),
            open: h('td', {class: 'num', testid: 'pool-open'}),
            source: h('td', {testid: 'pool-source'}),
            barRun: h('span', {class: 'pool-bar-running'}),
            barQueued: h('span', {class: 'pool-bar-queued'}),
            slots: null,
        };
        c.bar = h('span', {class: 'pool-bar', testid: 'pool-bar', role: 'img'},
                  c.barRun, c.barQueued);
        let input = null, slotsCell;
        if (admin) {
            input = h('input', {type: 'number', min: 0, max: SLOTS_MAX, step: 1,
                                class: 'pool-slots-input', testid: 'pool-slots-input',
                                'aria-label': `slots of pool ${p.name}`});
            const btn = h('button', {type: 'button', class: 'btn btn-small',
                                     testid: 'pool-slots-save'}, 'Save');
            input.addEventListener('input', () => { input.dataset.dirty = '1'; });
            input.addEventListener('keydown', (ev) => {
                if (ev.key === 'Enter') save(p.name, input, btn);
                if (ev.key === 'Escape') { input.dataset.dirty = ''; input.value = input.dataset.slots; }
            });
            btn.addEventListener('click', () => save(p.name, input, btn));
            slotsCell = h('td', {class: 'num'}, input, ' ', btn);
        } else {
            c.slots = h('span', {testid: 'pool-slots'});
            slotsCell = h('td', {class: 'num'}, c.slots);
        }
        const tr = h('tr', {testid: 'pool-row', 'data-pool': p.name},
                     h('td', null, h('code', {class: 'pool-name'}, p.name)), slotsCell,
                     c.running, c.queued, c.scheduled, c.open, h('td', null, c.bar), c.source);
        return {tr, c, input};
    }

    function fill(r, p) {
        const {c, input} = r;
        if (input) {
            input.dataset.slots = String(p.slots);
            /* never overwrite what an admin is typing */
            if (!input.dataset.dirty && document.activeElement !== input)
                input.value = String(p.slots);
        } else {
            c.slots.textContent = String(p.slots);
        }
        c.running.textContent = String(p.running);
        c.queued.textContent = String(p.queued);
        c.scheduled.textContent = String(p.scheduled);
        c.open.textContent = String(p.open);
        c.source.textContent = p.source;
        const b = bar(p);
        c.barRun.style.width = b.running + '%';
        c.barQueued.style.width = b.queued + '%';
        c.bar.classList.toggle('pool-bar-full', b.full);
        c.bar.setAttribute('aria-label', `${p.running} running and ${p.queued} queued of ` +
                                         `${p.slots} slots`);
        r.tr.dataset.running = String(p.running);
        r.tr.dataset.queued = String(p.queued);
    }

    function draw(list) {
        const seen = new Set();
        const trs = [];
        for (const p of list) {
            let r = rows.get(p.name);
            if (!r) {
                r = makeRow(p);
                rows.set(p.name, r);
            }
            fill(r, p);
            seen.add(p.name);
            trs.push(r.tr);
        }
        for (const name of [...rows.keys()]) if (!seen.has(name)) rows.delete(name);
        const same = trs.length === tbody.children.length &&
                     trs.every((tr, i) => tbody.children[i] === tr);
        if (!same) replace(tbody, trs);
        count.textContent = `${list.length} pool${list.length === 1 ? '' : 's'}`;
        wrap.hidden = list.length === 0;
    }

    async function poll() {
        if (timer) clearTimeout(timer);
        timer = null;
        if (ctl) ctl.abort();
        const my = ctl = new AbortController();
        try {
            const o = await get('/pools?limit=10000', {signal: my.signal});
            if (!alive || my !== ctl) return;
            draw(o.pools || []);
            if (!loaded) replace(slot);
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

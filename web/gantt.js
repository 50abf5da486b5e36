/*
 * gantt.js - the Gantt chart of one run: one row per task instance, a lighter
 * bar for the time it waited in the queue (queued_at -> started_at) and a
 * solid bar for the time it ran (started_at -> ended_at, or now while it
 * runs), on a shared time axis. Rows on the critical path are outlined and
 * marked with ◆ (not colour alone).
 *
 * Key ideas:
 * - Rows are sorted by when the instance entered the queue; instances that
 *   never started sit at the bottom without bars.
 * - The chart is one markup string parsed once; above VIRTUAL_FROM rows only
 *   the rows scrolled into view are drawn (the SVG keeps its full height),
 *   so a live redraw of a 2,000-instance run stays cheap.
 * - The axis is a separate SVG above the scrolling rows so it stays visible.
 * - Each row is an SVG <a> to the task instance page (keyboard reachable).
 * - An instance that was retried shows each try as its own bar, coloured by
 *   how that try ended, joined by a thin line across the retry delay, when
 *   the page gave its tries (draw's tries map; else one bar for them all).
 */

import {esc, h} from './dom.js';
import * as fmt from './fmt.js';
import {label, norm} from './states.js';

const ROW_H = 22, BAR_H = 14, PAD_R = 16, AXIS_H = 28;
const VIRTUAL_FROM = 300; /* instances; above this only the rows in view are drawn */
const OVERSCAN = 30;
const STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120,
               300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

/* When the instance's first try entered the queue or started: an instance's queued_at is its
   latest try's, its started_at its first try's. */
function startOf(ti) {
    const q = fmt.ms(ti.queued_at), s = fmt.ms(ti.started_at);
    if (!isNaN(q) || !isNaN(s)) return Math.min(isNaN(q) ? Infinity : q, isNaN(s) ? Infinity : s);
    const t = fmt.ms(ti.scheduled_at);
    return isNaN(t) ? Infinity : t;
}

/*
 * createGantt({href(ti)}) -> {el, draw(tis, criticalIds: Set, now, tries)}; tries: an
 * optional Map task_id -> [try objects of the API] for instances retried.
 */
export function createGantt(opts) {
    const axis = h('div', {class: 'gantt-axis'});
    const rows = h('div', {class: 'gantt-scroll'});
    const el = h('div', {class: 'gantt-wrap'}, axis, rows);
    let lastWidth = 0;
    let view = null; /* what draw() computed: rows, scale, width... */

    function draw(tis, critical, now, tries) {
        const width = Math.max(340, el.clientWidth || lastWidth || 1000);
        lastWidth = width;
        const LABEL_W = Math.min(230, Math.round(width * 0.34));
        const maxChars = Math.floor((LABEL_W - 12) / 7.4);
        const list = tis.slice().sort((a, b) => startOf(a) - startOf(b) ||
                                                (a.task_id < b.task_id ? -1 : 1));
        let t0 = Infinity, t1 = -Infinity;
        for (const ti of list) {
            const s = startOf(ti);
            if (s < t0) t0 = s;
            /* a cleared instance's tries may have started before its current start */
            for (const t of (tries && tries.get(ti.task_id)) || []) {
                const ts = fmt.ms(t.started_at);
                if (ts < t0) t0 = ts;
            }
            for (const k of ['queued_at', 'started_at', 'ended_at']) {
                const t = fmt.ms(ti[k]);
                if (!isNaN(t) && t > t1) t1 = t;
            }
            if (ti.started_at && !ti.ended_at && now > t1) t1 = now;
        }
        if (!isFinite(t0)) {
            view = null;
            axis.textContent = '';
            rows.innerHTML =
                `<svg xmlns="http://www.w3.org/2000/svg" class="gantt-svg" data-testid="gantt"` +
                ` width="${width}" height="40" role="group" aria-label="Gantt chart (empty)">` +
                `<text class="gantt-empty" x="12" y="24">No task has been queued yet.</text></svg>`;
            return;
        }
        if (!(t1 > t0)) t1 = t0 + 1000;
        const span = (t1 - t0) / 1000;
        const plotW = width - LABEL_W - PAD_R;
        const x = (t) => LABEL_W + ((t - t0) / (t1 - t0)) * plotW;

        /* axis: about one tick per 100 px */
        let step = STEPS[STEPS.length - 1];
        for (const s of STEPS) if (span / s <= plotW / 100) { step = s; break; }
        const ticks = [];
        const grid = [];
        for (let v = 0; v <= span + 1e-9; v += step) {
            const px = x(t0 + v * 1000).toFixed(1);
            ticks.push(`<line class="gantt-tick" x1="${px}" x2="${px}" y1="${AXIS_H - 6}"` +
                       ` y2="${AXIS_H}"/>` +
                       `<text class="gantt-ticklabel" x="${px}" y="${AXIS_H - 10}">` +
                       `${v === 0 ? '0' : '+' + esc(fmt.duration(v))}</text>`);
            grid.push(`<line class="gantt-grid" x1="${px}" x2="${px}" y1="0" y2="100%"/>`);
        }
        axis.innerHTML =
            `<svg xmlns="http://www.w3.org/2000/svg" class="gantt-axis-svg" width="${width}"` +
            ` height="${AXIS_H}" aria-hidden="true">` +
            `<text class="gantt-start" x="4" y="${AXIS_H - 10}">` +
            `${esc(fmt.time(new Date(t0).toISOString()))}</text>${ticks.join('')}</svg>`;

        const H = list.length * ROW_H + 4;
        let nowLine = '';
        if (now >= t0 && now <= t1 && list.some((ti) => ti.started_at && !ti.ended_at)) {
            const px = x(now).toFixed(1);
            nowLine = `<line class="gantt-now" x1="${px}" x2="${px}" y1="0" y2="${H}"/>`;
        }
        view = {list, critical, now, tries: tries || new Map(), width, H, x, LABEL_W, maxChars, span,
                grid: grid.join(''), nowLine, from: -1, to: -1};
        renderRows(true);
    }

    /* The markup of row i of the current view. */
    function rowMarkup(i) {
        const {list, critical, now, width, x, maxChars} = view;
        const ti = list[i];
        const st = norm(ti.state);
        const crit = critical.has(ti.task_id);
        const y = i * ROW_H;
        const q = fmt.ms(ti.queued_at), s = fmt.ms(ti.started_at);
        let e = fmt.ms(ti.ended_at);
        if (isNaN(e) && !isNaN(s)) e = now;
        let bars = '';
        const by = (ROW_H - BAR_H) / 2;
        const qEnd = !isNaN(s) ? s : (!isNaN(e) ? e : (st === 'queued' ? now : NaN));
        if (!isNaN(q) && !isNaN(qEnd) && qEnd > q) {
            const x1 = x(q), w = Math.max(1, x(qEnd) - x1);
            bars += `<rect class="gq" x="${x1.toFixed(1)}" y="${by}" width="${w.toFixed(1)}"` +
                    ` height="${BAR_H}" rx="2"/>`;
        }
        const tries = view.tries.get(ti.task_id);
        let triesTip = '';
        if (tries && tries.length > 1 && !isNaN(s)) {
            let prevEnd = NaN;
            const parts = [];
            for (const t of tries) {
                const ts = fmt.ms(t.started_at);
                if (isNaN(ts)) continue;
                let te = fmt.ms(t.ended_at);
                if (isNaN(te)) te = Math.max(ts, now);
                const tst = norm(t.state);
                if (!isNaN(prevEnd) && ts > prevEnd) {
                    bars += `<line class="gretry" x1="${x(prevEnd).toFixed(1)}"` +
                            ` x2="${x(ts).toFixed(1)}" y1="${ROW_H / 2}" y2="${ROW_H / 2}"/>`;
                }
                const x1 = x(ts), w = Math.max(3, x(te) - x1);
                bars += `<rect class="gr gtry" data-testid="gantt-try" data-try="${t.try_number}"` +
                        ` data-state="${tst}" x="${x1.toFixed(1)}" y="${by}"` +
                        ` width="${w.toFixed(1)}" height="${BAR_H}" rx="2"/>`;
                parts.push(`try ${t.try_number} ${label(tst)}` +
                           (t.ended_at ? ` ${fmt.duration((te - ts) / 1000)}` : ''));
                prevEnd = te;
            }
            triesTip = ` · ${parts.join(', ')}`;
        } else if (!isNaN(s)) {
            const x1 = x(s), w = Math.max(3, x(isNaN(e) ? s : e) - x1);
            bars += `<rect class="gr" x="${x1.toFixed(1)}" y="${by}" width="${w.toFixed(1)}"` +
                    ` height="${BAR_H}" rx="2"/>`;
        }
        const dur = ti.duration_s !== null && ti.duration_s !== undefined ? ti.duration_s
                    : (!isNaN(s) && !isNaN(e) ? (e - s) / 1000 : null);
        /* a retried instance's queued_at is its latest try's, started_at its first try's */
        const waited = !isNaN(q) && !isNaN(s) && s >= q ? (s - q) / 1000 : null;
        const tip = `${ti.task_id}: ${label(st)}` +
                    (waited !== null ? ` · queued ${fmt.duration(waited)}` : '') +
                    (dur !== null ? ` · ran ${fmt.duration(dur)}` : '') + triesTip +
                    (crit ? ' · on the critical path' : '');
        const room = crit ? maxChars - 2 : maxChars;
        const name = ti.task_id.length > room ? ti.task_id.slice(0, room - 1) + '…' : ti.task_id;
        return `<a class="gbar${crit ? ' crit' : ''}" data-testid="gantt-bar"` +
               ` data-task="${esc(ti.task_id)}" data-state="${st}" data-critical="${crit}"` +
               ` href="${esc(opts.href(ti))}" transform="translate(0,${y})"` +
               ` aria-label="${esc(tip)}"><title>${esc(tip)}</title>` +
               `<rect class="gbar-bg" x="0" y="0" width="${width}" height="${ROW_H}"/>` +
               `<text class="gbar-label" x="6" y="${ROW_H / 2 + 4}">${crit ? '◆ ' : ''}` +
               `${esc(name)}</text>${bars}</a>`;
    }

    /*
     * Writes the rows on screen (all of them below VIRTUAL_FROM instances,
     * else the scrolled-to window plus a margin) into one SVG as tall as all.
     */
    function renderRows(force) {
        if (!view) return;
        const n = view.list.length;
        let a = 0, b = n;
        if (n > VIRTUAL_FROM) {
            const top = rows.scrollTop, hgt = rows.clientHeight || 500;
            a = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
            b = Math.min(n, Math.ceil((top + hgt) / ROW_H) + OVERSCAN);
        }
        if (!force && a === view.from && b === view.to) return;
        view.from = a;
        view.to = b;
        const parts = [];
        for (let i = a; i < b; i++) parts.push(rowMarkup(i));
        rows.innerHTML =
            `<svg xmlns="http://www.w3.org/2000/svg" class="gantt-svg" data-testid="gantt"` +
            ` width="${view.width}" height="${view.H}" role="group"` +
            ` aria-label="Gantt chart: ${n} task instances over ${esc(fmt.duration(view.span))}">` +
            `<g class="gantt-grids">${view.grid}</g>${parts.join('')}${view.nowLine}</svg>`;
    }

    let queued = false;
    rows.addEventListener('scroll', () => {
        if (queued || !view || view.list.length <= VIRTUAL_FROM) return;
        queued = true;
        requestAnimationFrame(() => {
            queued = false;
            renderRows(false);
        });
    });

    return {el, draw};
}

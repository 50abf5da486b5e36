/*
 * grid.js - the Airflow-style grid: rows are tasks, columns are runs (oldest
 * left, newest right), a cell is the state of that task in that run (colour
 * and glyph), a link to the task instance page.
 *
 * Key ideas:
 * - The model is plain data: tasks (ids in graph order), runs (objects) and
 *   cells[runIndex] = Map task -> state, or null while that run loads (its
 *   column shows placeholders, without the grid-cell testid, until fill()).
 *   Live updates change the model and, when the row is on screen, the one
 *   cell element.
 * - Rows are virtualised above VIRTUAL_FROM tasks: only the rows in view (plus
 *   a margin) exist in the DOM, between two spacer rows; scrolling redraws
 *   the window on the next animation frame. Small DAGs render every row.
 * - Rows are written as one markup string per redraw (fast), clicks and keys
 *   are plain links, so no per-cell listeners.
 */

import {esc, h} from './dom.js';
import {glyph, label, norm} from './states.js';
import * as fmt from './fmt.js';

const ROW_H = 26;         /* must match .grid-row height in style.css */
const VIRTUAL_FROM = 300; /* tasks; below this every row is rendered */
const OVERSCAN = 20;
const FILL_MS = 250;      /* batching of columns that arrive while the grid loads */

/*
 * createGrid({tasks: [{id, mapped}], runs: [run...] oldest first,
 *             cells: [Map task->state] per run, href(task, run), runHref(run)})
 * returns {el, update(runId, task, state), rerender()}.
 */
export function createGrid(model) {
    const {tasks, runs} = model;
    const virtual = tasks.length > VIRTUAL_FROM;
    const runIndex = new Map(runs.map((r, i) => [r.run_id, i]));

    const head = h('div', {class: 'grid-row grid-head', role: 'row'},
                   h('div', {class: 'grid-name', role: 'columnheader'}, 'Task'),
                   runs.map((r) => {
                       const st = norm(r.state);
                       return h('div', {class: 'grid-colhead', role: 'columnheader'},
                                h('a', {class: 'run-bar st-' + st, href: model.runHref(r),
                                        'data-run': r.run_id, 'data-state': st,
                                        title: `${r.run_id}\n${label(st)} · ` +
                                               fmt.duration(r.duration_s),
                                        'aria-label': `run ${r.run_id}: ${label(st)}`},
                                  h('span', {'aria-hidden': 'true'}, glyph(st))));
                   }));
    const body = h('div', {class: 'grid-body', role: 'rowgroup'});
    const scroll = h('div', {class: 'grid-scroll'}, h('div', {class: 'grid', testid: 'grid',
                                                              role: 'table',
                                                              'aria-label': 'Task states by run',
                                                              'aria-rowcount': tasks.length + 1},
                                                      head, body));
    scroll.firstChild.style.setProperty('--runs', String(runs.length));

    let from = 0, to = 0;
    let cellEls = new Map(); /* task + '\n' + run -> element, rows on screen only */

    function cellHtml(t, r, ri) {
        if (!model.cells[ri]) return '<span class="gcell gcell-wait" aria-hidden="true"></span>';
        const st = norm(model.cells[ri].get(t.id));
        const href = model.href(t, r);
        return `<a class="gcell st-${st}" role="cell" data-testid="grid-cell"` +
               ` data-task="${esc(t.id)}"` +
               ` data-run="${esc(r.run_id)}" data-state="${st}" href="${esc(href)}"` +
               ` title="${esc(t.id)} · ${esc(r.run_id)}: ${label(st)}"` +
               ` aria-label="${esc(t.id)}, run ${esc(r.run_id)}: ${label(st)}">${glyph(st)}</a>`;
    }

    function draw() {
        let a = 0, b = tasks.length;
        if (virtual) {
            const top = scroll.scrollTop, hgt = scroll.clientHeight || 600;
            a = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
            b = Math.min(tasks.length, Math.ceil((top + hgt) / ROW_H) + OVERSCAN);
            if (a === from && b === to && body.firstChild) return;
        }
        from = a;
        to = b;
        const parts = [];
        if (virtual) parts.push(`<div class="grid-spacer" data-h="${a * ROW_H}"></div>`);
        for (let i = a; i < b; i++) {
            const t = tasks[i];
            parts.push(`<div class="grid-row" role="row" aria-rowindex="${i + 2}"` +
                       ` data-task="${esc(t.id)}"><div class="grid-name" role="rowheader"` +
                       ` title="${esc(t.id)}">${esc(t.id)}${t.mapped ? ' [ ]' : ''}</div>`);
            for (let ri = 0; ri < runs.length; ri++) parts.push(cellHtml(t, runs[ri], ri));
            parts.push('</div>');
        }
        if (virtual)
            parts.push(`<div class="grid-spacer" data-h="${(tasks.length - b) * ROW_H}"></div>`);
        body.innerHTML = parts.join('');
        if (virtual)
            for (const sp of body.querySelectorAll('.grid-spacer'))
                sp.style.height = sp.getAttribute('data-h') + 'px';
        cellEls = new Map();
        for (const c of body.querySelectorAll('.gcell'))
            cellEls.set(c.getAttribute('data-task') + '\n' + c.getAttribute('data-run'), c);
    }

    if (virtual) {
        let queued = false;
        scroll.addEventListener('scroll', () => {
            if (queued) return;
            queued = true;
            requestAnimationFrame(() => {
                queued = false;
                draw();
            });
        });
        scroll.classList.add('grid-virtual');
    }

    /* A state change of one task instance (task = the task's id, aggregated already). */
    function update(runId, task, state) {
        const ri = runIndex.get(runId);
        if (ri === undefined || !model.cells[ri]) return false;
        const st = norm(state);
        model.cells[ri].set(task, st);
        const c = cellEls.get(task + '\n' + runId);
        if (c && c.getAttribute('data-state') !== st) {
            c.setAttribute('data-state', st);
            c.className = 'gcell st-' + st;
            c.textContent = glyph(st);
            c.title = `${task} · ${runId}: ${label(st)}`;
            c.setAttribute('aria-label', `${task}, run ${runId}: ${label(st)}`);
        }
        return true;
    }

    function updateRun(runId, state) {
        const st = norm(state);
        const a = head.querySelector(`.run-bar[data-run="${CSS.escape(runId)}"]`);
        if (!a) return false;
        a.className = 'run-bar st-' + st;
        a.setAttribute('data-state', st);
        a.firstChild.textContent = glyph(st);
        a.setAttribute('aria-label', `run ${runId}: ${label(st)}`);
        return true;
    }

    /*
     * A run's column arrived (cells load newest first, after the grid is
     * shown). Redraws are batched FILL_MS apart: each one lays the grid out
     * again, and 24 columns arriving one by one would do it 24 times.
     */
    let fillTimer = null;
    function fill(runId, states) {
        const ri = runIndex.get(runId);
        if (ri === undefined) return;
        model.cells[ri] = states;
        const redraw = () => {
            clearTimeout(fillTimer);
            fillTimer = null;
            from = to = -1; /* force the redraw */
            draw();
        };
        if (!model.cells.some((c) => !c)) redraw(); /* the last one: at once */
        else if (!fillTimer) fillTimer = setTimeout(redraw, FILL_MS);
    }

    draw();
    return {el: scroll, update, updateRun, fill, rerender: draw, hasRun: (id) => runIndex.has(id)};
}

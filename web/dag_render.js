/*
 * dag_render.js - the DAG page's DOM, made from its data (dag_data.js) with
 * h(): breadcrumbs, the facts line, the trigger button, the view tabs, the
 * run selector's options and the notes shown instead of a view. The graph
 * and the grid themselves are graph.js and grid.js.
 *
 * Key idea: pure functions, data in, fresh elements out; the page decides
 * where they go and wires the events.
 */

import {link} from './api.js';
import {h} from './dom.js';
import * as fmt from './fmt.js';
import {graphOrder} from './model.js';
import {glyph, label, norm} from './states.js';

export function crumbs(dag) {
    return h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
             h('a', {href: link.dags()}, 'DAGs'), ' / ', h('span', null, dag));
}

/* One tab of the view switch ('graph' or 'grid'). */
export function tab(view, text) {
    return h('button', {type: 'button', role: 'tab', class: 'tab', testid: 'view-' + view,
                        id: 'tab-' + view, 'aria-controls': 'dag-view'}, text);
}

/* "description · schedule manual · 12 tasks · next run ... · paused" */
export function meta(detail, graph) {
    const d = detail || {};
    const bits = [];
    if (d.description) bits.push(h('span', null, d.description));
    bits.push(h('span', null, 'schedule ', h('code', null, d.schedule || 'manual')));
    if (graph) bits.push(h('span', null, `${(graph.nodes || []).length} tasks`));
    const nr = d.next_run;
    const due = nr && (nr.due_at || nr.logical_date);
    const zoned = nr ? fmt.zoned(nr.due_at_local || nr.logical_date_local, d.timezone) : '';
    if (due)
        bits.push(h('span', {title: `logical date ${nr.logical_date || '—'}`},
                    'next run ', fmt.time(due), ' ',
                    h('span', {class: 'small'}, '(' + fmt.relative(due) + ')'),
                    zoned ? h('span', {class: 'small muted', testid: 'next-run-zoned'},
                              ' · ' + zoned) : null));
    if (d.paused) bits.push(h('span', {class: 'pill pill-paused'}, 'paused'));
    return bits.map((b, i) => [i ? h('span', {class: 'sep', 'aria-hidden': 'true'}, '·') : null,
                               b]);
}

export function triggerButton(dag, onclick) {
    return h('button', {type: 'button', class: 'btn btn-primary', testid: 'dag-trigger',
                        'aria-label': `trigger ${dag}`, onclick}, '▶ Trigger');
}

/* "✓ 2026-11-28 · scheduled · success  (scheduled__2026-...)"; a DAG with a time zone tz also
 * gets the logical date on its clock: "(... · 2026-03-29 03:00 Europe/Berlin)". */
export function runLabel(r, tz) {
    const st = norm(r.state);
    const zoned = fmt.inZone(r.logical_date, tz);
    return `${glyph(st)} ${fmt.logical(r.logical_date)} · ${r.type || ''} · ${label(st)}` +
           `  (${r.run_id}${zoned ? ' · ' + zoned : ''})`;
}

/* The run selector's options, newest first. */
export function runOptions(runs, tz) {
    if (!runs.length) return [h('option', {value: ''}, 'no runs yet')];
    return runs.map((r) => h('option', {value: r.run_id}, runLabel(r, tz)));
}

export function graphMissingNote(e) {
    return h('p', {class: 'panel muted', role: 'note'},
             'The graph of this DAG is not available yet (', e ? e.message : '',
             '); it appears with its first run.');
}

export function noRunsNote() {
    return h('p', {class: 'panel muted'}, 'No runs yet: the grid fills as runs start.');
}

/* The grid's rows: the graph's tasks in reading order. */
export function gridTasks(graph) {
    return graphOrder(graph).map((n) => ({id: n.id, mapped: !!n.mapped}));
}

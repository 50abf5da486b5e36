/*
 * page_audit.js - the Audit page (#/audit, admins): the audit log, newest
 * first (GET /audit): when, who (an API user or cli:<unix user>), from
 * where, what and on what, with the details. Filters by DAG and user (kept
 * in the query: ?dag=&user=); "Older" pages on with ?before= of the last row
 * shown. No event stream: the list is read when the page opens or a filter
 * changes.
 */

import {get, enc, link} from './api.js';
import {h, replace} from './dom.js';
import {setQuery} from './router.js';
import {errorPanel, loading, timeEl} from './ui.js';

const PAGE = 100;

function target(e) {
    const parts = [];
    if (e.dag_id) parts.push(h('a', {href: link.dag(e.dag_id)}, e.dag_id));
    if (e.run_id) {
        if (parts.length) parts.push(' / ');
        parts.push(e.dag_id ? h('a', {href: link.run(e.dag_id, e.run_id)}, e.run_id) : e.run_id);
    }
    if (e.task_id) parts.push(parts.length ? ' / ' : '', e.task_id);
    return parts.length ? parts : '—';
}

function row(e) {
    const d = e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : '';
    return h('tr', {testid: 'audit-row', 'data-action': e.action, 'data-source': e.source},
             h('td', null, timeEl(e.at)), h('td', null, e.user),
             h('td', null, h('span', {class: 'queue'}, e.source)),
             h('td', {testid: 'audit-action'}, e.action), h('td', null, target(e)),
             h('td', null, d ? h('code', {class: 'small'}, d) : ''));
}

export function mount(root, route) {
    document.title = 'Audit · baram';
    const ctl = new AbortController();
    const q = {dag: route.query.dag || '', user: route.query.user || ''};
    const dagIn = h('input', {id: 'audit-dag', testid: 'audit-dag', value: q.dag,
                              placeholder: 'any DAG'});
    const userIn = h('input', {id: 'audit-user', testid: 'audit-user', value: q.user,
                               placeholder: 'any user'});
    const tbody = h('tbody');
    const more = h('button', {type: 'button', class: 'btn btn-small', testid: 'audit-more'},
                   'Older');
    more.hidden = true;
    const slot = h('div', null, loading());
    let last = 0;

    const form = h('form', {class: 'filters', testid: 'audit-filters'},
                   h('label', {for: 'audit-dag'}, 'DAG '), dagIn, ' ',
                   h('label', {for: 'audit-user'}, 'User '), userIn, ' ',
                   h('button', {type: 'submit', class: 'btn btn-small'}, 'Filter'));
    form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        q.dag = dagIn.value.trim();
        q.user = userIn.value.trim();
        setQuery({dag: q.dag || null, user: q.user || null});
        load(false);
    });
    more.addEventListener('click', () => load(true));

    replace(root, h('div', {class: 'page-head'}, h('h1', null, 'Audit log')), form, slot,
            h('div', {class: 'table-scroll'},
              h('table', {class: 'table', testid: 'audit-table'},
                h('thead', null, h('tr', null, ['When', 'User', 'Source', 'Action', 'Target',
                                                'Details'].map((c) => h('th', {scope: 'col'}, c)))),
                tbody)),
            more);

    async function load(older) {
        let path = `/audit?limit=${PAGE}`;
        if (q.dag) path += `&dag=${enc(q.dag)}`;
        if (q.user) path += `&user=${enc(q.user)}`;
        if (older && last) path += `&before=${last}`;
        try {
            const o = await get(path, {signal: ctl.signal});
            const list = o.entries || [];
            const rows = list.map(row);
            if (older) tbody.append(...rows);
            else replace(tbody, rows);
            if (list.length) last = list[list.length - 1].id;
            more.hidden = list.length < PAGE;
            replace(slot, !older && !list.length
                ? h('div', {class: 'panel muted', testid: 'audit-empty'}, 'Nothing recorded.')
                : null);
        } catch (e) {
            if (ctl.signal.aborted || e.name === 'AbortError' || e.status === 401) return;
            replace(slot, errorPanel(e, () => load(older)));
        }
    }
    load(false);

    return {unmount() { ctl.abort(); }};
}

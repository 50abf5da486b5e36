/*
 * page_variables.js - the Variables page (#/variables, admins; SPEC section
 * 13): every variable templates read as {{ var.KEY }}, added, edited and
 * deleted here as with `baram variables`.
 *
 * Key ideas:
 * - A secret's value never reaches the browser: the API answers "***" and
 *   the page shows a "secret" badge instead of a value. Editing a secret
 *   starts from an empty value: saving requires typing a new one.
 * - Writes are admin-only on the server; a viewer or operator opening the
 *   page sees a 403 message rather than a form that would fail.
 * - Delete asks for confirmation (ui.confirm), then reloads the list.
 */

import {api, enc, get, whoami} from './api.js';
import {h, replace} from './dom.js';
import * as fmt from './fmt.js';
import {confirm, errorPanel, loading, timeEl, toast} from './ui.js';

export function mount(root) {
    document.title = 'Variables · baram';
    let alive = true;
    if (whoami().role !== 'admin') {
        replace(root, h('div', {class: 'page-head'}, h('h1', null, 'Variables')),
                h('div', {class: 'panel', testid: 'variables-forbidden', role: 'alert'},
                  '403: variables are managed by admins; ask one to set what your DAGs read.'));
        return {unmount() { alive = false; }};
    }

    const count = h('span', {class: 'muted', testid: 'variables-count'});
    const tbody = h('tbody');
    const table = h('table', {class: 'table variables-table', testid: 'variables-table'},
                    h('caption', {class: 'sr-only'}, 'Variables'),
                    h('thead', null, h('tr', null,
                                       ['Key', 'Value', 'Updated', 'By', ''].map((c) =>
                                           h('th', {scope: 'col'}, c)))),
                    tbody);
    const slot = h('div', {class: 'slot'}, loading());

    const key = h('input', {id: 'var-key', type: 'text', testid: 'var-key', maxlength: 200,
                            pattern: '[A-Za-z0-9_.\\-]{1,200}', required: true,
                            spellcheck: 'false', autocomplete: 'off'});
    const value = h('textarea', {id: 'var-value', class: 'code-input', rows: 3,
                                 testid: 'var-value', spellcheck: 'false'});
    const secret = h('input', {id: 'var-secret', type: 'checkbox', testid: 'var-secret'});
    const err = h('p', {class: 'form-error', testid: 'var-error', role: 'alert'});
    err.hidden = true;
    const save = h('button', {type: 'submit', class: 'btn btn-primary', testid: 'var-save'},
                   'Save');
    const reset = h('button', {type: 'button', class: 'btn', testid: 'var-reset'}, 'New');
    const title = h('h2', {id: 'var-form-title'}, 'Add a variable');
    const form = h('form', {class: 'panel dialog-form', testid: 'var-form',
                            'aria-labelledby': 'var-form-title'},
                   title,
                   h('label', {for: 'var-key'}, 'Key ([A-Za-z0-9_.-], 1 to 200 characters)'),
                   key,
                   h('label', {for: 'var-value'}, 'Value'), value,
                   h('label', {for: 'var-secret'}, secret,
                     ' Secret: encrypted at rest, never shown again, masked as *** in logs'),
                   err, h('div', {class: 'dialog-actions'}, reset, save));

    function edit(v) {
        title.textContent = 'Edit ' + v.key;
        key.value = v.key;
        key.readOnly = true;
        secret.checked = !!v.secret;
        value.value = v.secret ? '' : v.value;
        value.required = !!v.secret;
        value.placeholder = v.secret ? 'type a new value: a secret is never shown' : '';
        err.hidden = true;
        value.focus();
    }

    function clearForm() {
        title.textContent = 'Add a variable';
        key.value = '';
        key.readOnly = false;
        value.value = '';
        value.required = false;
        value.placeholder = '';
        secret.checked = false;
        err.hidden = true;
    }

    function row(v) {
        const shown = v.secret
            ? h('span', {class: 'wbadge', testid: 'var-secret-badge'}, '🔒 secret')
            : h('code', {class: 'var-value', testid: 'var-shown'}, v.value);
        const editBtn = h('button', {type: 'button', class: 'btn btn-small', testid: 'var-edit',
                                     onclick: () => edit(v)}, 'Edit');
        const delBtn = h('button', {type: 'button', class: 'btn btn-small btn-danger',
                                    testid: 'var-delete',
                                    onclick: async () => {
                                        const ok = await confirm('Delete ' + v.key + '?',
                                            'Tasks that read {{ var.' + v.key + ' }} will fail.',
                                            'Delete', true);
                                        if (!ok) return;
                                        try {
                                            await api('DELETE', '/variables/' + enc(v.key));
                                            toast('Deleted ' + v.key);
                                            load();
                                        } catch (e) {
                                            if (e.status !== 401) toast(e.message, 'error');
                                        }
                                    }}, 'Delete');
        return h('tr', {testid: 'var-row', 'data-key': v.key, 'data-secret': String(!!v.secret)},
                 h('td', null, h('code', null, v.key)),
                 h('td', null, shown),
                 h('td', null, timeEl(v.updated_at, fmt.time(v.updated_at))),
                 h('td', null, v.updated_by || '—'),
                 h('td', null, editBtn, ' ', delBtn));
    }

    async function load() {
        try {
            const o = await get('/variables');
            if (!alive) return;
            const list = o.variables || [];
            replace(tbody, list.map(row));
            count.textContent = `${list.length} variable${list.length === 1 ? '' : 's'}`;
            replace(slot, list.length ? null
                                      : h('div', {class: 'panel muted', testid: 'variables-empty'},
                                          'no variables yet: add one below, or ',
                                          h('code', null, 'baram variables set KEY VALUE')));
        } catch (e) {
            if (!alive || e.status === 401) return;
            replace(slot, errorPanel(e, () => { replace(slot, loading()); load(); }));
        }
    }

    reset.addEventListener('click', clearForm);
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        save.disabled = true;
        try {
            await api('PUT', '/variables/' + enc(key.value),
                      {value: value.value, secret: secret.checked});
            toast('Saved ' + key.value);
            clearForm();
            load();
        } catch (e) {
            if (e.status === 401) return;
            err.textContent = e.message;
            err.hidden = false;
        } finally {
            save.disabled = false;
        }
    });

    replace(root,
            h('div', {class: 'page-head'}, h('div', null, h('h1', null, 'Variables'), count)),
            h('p', {class: 'muted small'},
              'Values DAGs read as ', h('code', null, '{{ var.KEY }}'), '. A secret is ' +
              'passed to commands through their environment and written as *** in logs.'),
            h('div', {class: 'table-scroll'}, table), slot, form);
    load();

    return {unmount() { alive = false; }};
}

/*
 * ops_dialogs.js - the state-operation dialogs (SPEC section 13), operator+
 * only (callers draw the buttons for operators alone; the server checks
 * anyway): mark a task instance success/failed (with its downstream), mark
 * a run, clear a DAG's runs over a date range, backfill a date range.
 *
 * Key idea: one modal <dialog> form (formDialog) holds the fields, an error
 * line and Cancel/submit buttons; submit calls the route, a 400/404/409 is
 * shown in the error line with the dialog kept open, success closes it,
 * shows a toast and calls onDone(result). Cancel changes nothing.
 */

import {api, enc} from './api.js';
import {h} from './dom.js';
import {toast} from './ui.js';

/* The dialog around fields; send() resolves to the toast text or throws. name: the testid
 * prefix ("mark" gives mark-dialog, mark-submit, mark-cancel, mark-error). */
function formDialog(name, title, fields, okLabel, send, onDone) {
    const err = h('p', {class: 'form-error', testid: name + '-error', role: 'alert'});
    err.hidden = true;
    const submit = h('button', {type: 'submit', class: 'btn btn-primary', testid: name + '-submit'},
                     okLabel);
    const cancel = h('button', {type: 'button', class: 'btn', testid: name + '-cancel'}, 'Cancel');
    const form = h('form', {method: 'dialog', class: 'dialog-form'},
                   h('h2', {id: name + '-title'}, title), ...fields, err,
                   h('div', {class: 'dialog-actions'}, cancel, submit));
    const dlg = h('dialog', {class: 'dialog', testid: name + '-dialog',
                             'aria-labelledby': name + '-title'}, form);
    const close = () => {
        if (dlg.open) dlg.close();
        dlg.remove();
    };
    cancel.addEventListener('click', close);
    dlg.addEventListener('close', () => dlg.remove());
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        err.hidden = true;
        submit.disabled = true;
        try {
            const res = await send();
            close();
            toast(res.text);
            if (onDone) onDone(res.body);
        } catch (e) {
            if (e.status === 401) {
                close();
                return;
            }
            err.textContent = e.message;
            err.hidden = false;
        } finally {
            submit.disabled = false;
        }
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    return dlg;
}

function field(label, input) {
    return [h('label', {for: input.id}, label), input];
}

function stateSelect(name) {
    return h('select', {id: name + '-state', testid: name + '-state'},
             h('option', {value: 'success'}, 'success'), h('option', {value: 'failed'}, 'failed'));
}

function dateInput(id, value) {
    return h('input', {id, testid: id, type: 'date', required: 'required', value: value || ''});
}

function fail(msg) {
    const e = new Error(msg);
    e.status = 400;
    return e;
}

/* Mark task (and with the box ticked, its downstream) of run success or failed. */
export function openMarkTask(dag, run, task, onDone) {
    const state = stateSelect('mark');
    const down = h('input', {id: 'mark-downstream', testid: 'mark-downstream', type: 'checkbox'});
    return formDialog('mark', `Mark ${task}`, [
        h('p', {class: 'dialog-text'}, `Sets ${task} in run ${run} to the state; a try still ` +
          'running is stopped.'),
        ...field('State', state),
        h('label', {class: 'check'}, down, ' also every task downstream of it'),
    ], 'Mark', async () => {
        const body = await api('POST', `/dags/${enc(dag)}/runs/${enc(run)}/tasks/${enc(task)}/mark`,
                               {state: state.value, downstream: down.checked});
        const names = (body && body.marked) || [task];
        return {body, text: body && body.requested
            ? `Mark of ${names.join(', ')} requested: the scheduler stops their tries`
            : `Marked ${names.join(', ')} ${state.value}`};
    }, onDone);
}

/* Mark the run success or failed. */
export function openMarkRun(dag, run, onDone) {
    const state = stateSelect('markrun');
    return formDialog('markrun', 'Mark run', [
        h('p', {class: 'dialog-text'}, `Ends run ${run} with the state: running tasks are ` +
          'stopped, unfinished ones get the state (skipped for failed when they never started).'),
        ...field('State', state),
    ], 'Mark run', async () => {
        const body = await api('POST', `/dags/${enc(dag)}/runs/${enc(run)}/mark`,
                               {state: state.value});
        return {body, text: body && body.requested ? 'Mark of the run requested'
                                                   : `Run marked ${state.value}`};
    }, onDone);
}

/* Clear the DAG's runs with logical dates in a range (one task, or only failed ones). */
export function openClear(dag, tasks, onDone) {
    const from = dateInput('clear-from'), to = dateInput('clear-to');
    const task = h('select', {id: 'clear-task', testid: 'clear-task'},
                   h('option', {value: ''}, 'every task'),
                   ...(tasks || []).map((t) => h('option', {value: t}, t)));
    const failed = h('input', {id: 'clear-failed', testid: 'clear-failed', type: 'checkbox'});
    return formDialog('clear', `Clear runs of ${dag}`, [
        h('p', {class: 'dialog-text'}, 'The ended runs with logical dates in the range run ' +
          'again (runs not ended yet are left alone).'),
        ...field('From', from), ...field('To', to), ...field('Task', task),
        h('label', {class: 'check'}, failed, ' only failed task instances'),
    ], 'Clear', async () => {
        if (!from.value || !to.value) throw fail('give both dates');
        const req = {from: from.value, to: to.value, only_failed: failed.checked};
        if (task.value) req.task = task.value;
        const body = await api('POST', `/dags/${enc(dag)}/clear`, req);
        const n = ((body && body.runs) || []).filter((r) => !r.skipped).length;
        return {body, text: `Cleared ${n} run${n === 1 ? '' : 's'} of ${dag}`};
    }, onDone);
}

/* Queue backfill runs for the schedule dates of a range, with an optional conf. */
export function openBackfill(dag, onDone) {
    const from = dateInput('backfill-from'), to = dateInput('backfill-to');
    const conf = h('textarea', {id: 'backfill-conf', class: 'code-input', rows: 4,
                                spellcheck: 'false', testid: 'backfill-conf',
                                placeholder: '{"param": "value"}'});
    return formDialog('backfill', `Backfill ${dag}`, [
        h('p', {class: 'dialog-text'}, 'Queues one run per schedule date in the range (dates ' +
          'that have a run are skipped; at most 1000).'),
        ...field('From', from), ...field('To', to),
        ...field('Run configuration (JSON object, optional)', conf),
    ], 'Backfill', async () => {
        if (!from.value || !to.value) throw fail('give both dates');
        const req = {from: from.value, to: to.value};
        const text = conf.value.trim();
        if (text) {
            let v;
            try {
                v = JSON.parse(text);
            } catch (e) {
                throw fail('conf is not valid JSON: ' + e.message);
            }
            if (v === null || typeof v !== 'object' || Array.isArray(v))
                throw fail('conf must be a JSON object, like {"name": "value"}');
            req.conf = v;
        }
        const body = await api('POST', `/dags/${enc(dag)}/backfill`, req);
        const n = body ? body.queued : 0;
        return {body, text: `Queued ${n} backfill run${n === 1 ? '' : 's'} of ${dag}`};
    }, onDone);
}

/*
 * trigger.js - the "trigger a run" dialog, shared by the DAG list and the DAG
 * page (operator+ only; callers do not render the button for viewers).
 *
 * Key idea: a modal <dialog> with an optional JSON conf. The JSON is checked
 * here first (must be an object) so typos get an immediate message; then
 * POST /dags/{dag}/runs {conf}. A 400 from the server (e.g. a param of the
 * wrong type) is shown in trigger-error and the dialog stays open; success
 * closes it, shows a toast with the new run id and calls onDone(run).
 */

import {api, enc} from './api.js';
import {h} from './dom.js';
import {toast} from './ui.js';

export function openTrigger(dag, onDone, params) {
    /* the DAG's params and their defaults, when known, show what conf may set */
    const hint = params && Object.keys(params).length ? JSON.stringify(params, null, 2)
                                                      : '{"param": "value"}';
    const conf = h('textarea', {id: 'trigger-conf', class: 'code-input', rows: 6,
                                spellcheck: 'false', testid: 'trigger-conf', placeholder: hint});
    const err = h('p', {class: 'form-error', testid: 'trigger-error', role: 'alert'});
    err.hidden = true;
    const submit = h('button', {type: 'submit', class: 'btn btn-primary', testid: 'trigger-submit'},
                     'Trigger');
    const cancel = h('button', {type: 'button', class: 'btn', testid: 'trigger-cancel'}, 'Cancel');
    const form = h('form', {method: 'dialog', class: 'dialog-form'},
                   h('h2', {id: 'trigger-title'}, 'Trigger ', h('code', null, dag)),
                   h('label', {for: 'trigger-conf'}, 'Run configuration (JSON object, optional)'),
                   conf, err,
                   h('div', {class: 'dialog-actions'}, cancel, submit));
    const dlg = h('dialog', {class: 'dialog', testid: 'trigger-dialog',
                             'aria-labelledby': 'trigger-title'}, form);

    const close = () => {
        if (dlg.open) dlg.close();
        dlg.remove();
    };
    const fail = (msg) => {
        err.textContent = msg;
        err.hidden = false;
        conf.setAttribute('aria-invalid', 'true');
        conf.focus();
    };
    cancel.addEventListener('click', close);
    dlg.addEventListener('close', () => dlg.remove());
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const text = conf.value.trim();
        const body = {};
        if (text) {
            let v;
            try {
                v = JSON.parse(text);
            } catch (e) {
                fail('conf is not valid JSON: ' + e.message);
                return;
            }
            if (v === null || typeof v !== 'object' || Array.isArray(v)) {
                fail('conf must be a JSON object, like {"name": "value"}');
                return;
            }
            body.conf = v;
        }
        submit.disabled = true;
        try {
            const run = await api('POST', `/dags/${enc(dag)}/runs`, body);
            close();
            toast(`Triggered ${dag}: run ${run && run.run_id ? run.run_id : ''}`);
            if (onDone) onDone(run);
        } catch (e) {
            if (e.status === 401) {
                close();
                return;
            }
            fail(e.message);
        } finally {
            submit.disabled = false;
        }
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    conf.focus();
    return dlg;
}

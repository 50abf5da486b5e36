/*
 * trigger.js - the "trigger a run" dialog, shared by the DAG list and the DAG
 * page (operator+ only; callers do not render the button for viewers).
 *
 * Key idea: a form generated from the DAG's params (GET /dags/{dag} gives
 * params_schema, SPEC section 13): one field per param - a number input with
 * min/max for integer and number, a select for an enum, a checkbox for a
 * boolean, text for a string, a JSON textarea for an array or object - with
 * the default filled in and the description shown. The form checks each value
 * as the server will and says what is wrong next to the field; the conf sent
 * holds the values that differ from their defaults (and every param without
 * one). "Raw JSON" switches to a textarea for the conf as a JSON object (the
 * form's values carried over both ways). The server stays the judge: its 400
 * (e.g. "param 'limit': 0 is less than the minimum 1") is shown in
 * trigger-error, the field it names is marked, and the dialog stays open;
 * success closes it, shows a toast with the new run id and calls onDone(run).
 */

import {api, enc} from './api.js';
import {h} from './dom.js';
import {toast} from './ui.js';

const show = (v) => JSON.stringify(v);

/* The same wording as the server's (src/dag/params.c), without "param 'NAME': ". */
function typeError(v, type) {
    const a = type === 'integer' || type === 'array' || type === 'object' ? 'an' : 'a';
    return `${show(v)} is not ${a} ${type}`;
}

function sameValue(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
}

/* One param's field: {name, el (the row), input, read() -> {unset} | {value} | {error}, set(v)}. */
function paramField(name, sc) {
    const type = sc.type || '';
    const def = sc.default === undefined ? null : sc.default;
    const id = `trigger-param-${name}`;
    let input;
    if (Array.isArray(sc.enum)) {
        input = h('select', {id, class: 'select', testid: id, 'data-param': name});
        if (def === null) input.appendChild(h('option', {value: ''}, '(choose)'));
        sc.enum.forEach((v, i) => input.appendChild(h('option', {value: String(i)}, String(v))));
    } else if (type === 'boolean') {
        input = h('input', {id, type: 'checkbox', testid: id, 'data-param': name});
    } else if (type === 'integer' || type === 'number') {
        input = h('input', {id, type: 'number', testid: id, 'data-param': name,
                            step: type === 'integer' ? '1' : 'any',
                            min: sc.minimum, max: sc.maximum});
    } else if (type === 'array' || type === 'object') {
        input = h('textarea', {id, class: 'code-input', rows: 3, spellcheck: 'false', testid: id,
                               'data-param': name, placeholder: type === 'array' ? '[]' : '{}'});
    } else {
        input = h('input', {id, type: 'text', testid: id, 'data-param': name,
                            title: sc.pattern ? `matches ${sc.pattern}` : null});
    }
    const err = h('p', {class: 'form-error', testid: `trigger-param-error-${name}`, role: 'alert'});
    const rules = [];
    if (type) rules.push(type);
    if (sc.minimum !== undefined) rules.push(`min ${sc.minimum}`);
    if (sc.maximum !== undefined) rules.push(`max ${sc.maximum}`);
    if (sc.pattern) rules.push(`pattern ${sc.pattern}`);
    if (def === null) rules.push('required');
    const label = h('label', {for: id}, name,
                    rules.length ? h('span', {class: 'param-rules'}, ` (${rules.join(', ')})`) : null);
    const desc = sc.description ? h('p', {class: 'param-desc', testid: `trigger-param-desc-${name}`},
                                     sc.description) : null;
    const el = h('div', {class: 'param-field' + (type === 'boolean' ? ' param-check' : ''),
                         testid: 'trigger-param', 'data-param': name},
                 type === 'boolean' ? [input, label] : [label, input], desc, err);

    function set(v) {
        if (Array.isArray(sc.enum)) {
            const i = sc.enum.findIndex((e) => sameValue(e, v) || String(e) === String(v));
            input.value = i < 0 ? '' : String(i);
        } else if (type === 'boolean') {
            input.checked = v === true || v === 'true';
        } else if (type === 'array' || type === 'object') {
            input.value = v === null || v === undefined ? '' : JSON.stringify(v);
        } else {
            input.value = v === null || v === undefined ? '' : String(v);
        }
    }

    /* The value as the server would take it, or why not. */
    function read() {
        let v;
        if (Array.isArray(sc.enum)) {
            if (input.value === '') return {unset: true};
            return {value: sc.enum[Number(input.value)]};
        }
        if (type === 'boolean') return {value: input.checked};
        const text = input.value;
        if (type === 'integer' || type === 'number') {
            if (text.trim() === '') {
                /* a number input reads "" for what is not a number too */
                if (input.validity && input.validity.badInput) return {error: 'not a number'};
                return {unset: true};
            }
            v = Number(text);
            if (!Number.isFinite(v)) return {error: typeError(text, type)};
            if (type === 'integer' && !Number.isInteger(v)) return {error: typeError(v, type)};
            if (sc.minimum !== undefined && v < sc.minimum)
                return {error: `${v} is less than the minimum ${sc.minimum}`};
            if (sc.maximum !== undefined && v > sc.maximum)
                return {error: `${v} is greater than the maximum ${sc.maximum}`};
            return {value: v};
        }
        if (type === 'array' || type === 'object') {
            if (text.trim() === '') return {unset: true};
            try {
                v = JSON.parse(text);
            } catch (e) {
                return {error: `not valid JSON: ${e.message}`};
            }
            const ok = type === 'array' ? Array.isArray(v)
                                        : v !== null && typeof v === 'object' && !Array.isArray(v);
            return ok ? {value: v} : {error: typeError(v, type)};
        }
        if (text === '' && def === null) return {unset: true};
        /* the server searches a POSIX extended regex; JavaScript's agrees except for POSIX
           classes like [[:digit:]], which are left to the server */
        if (sc.pattern && !sc.pattern.includes('[:')) {
            let re = null;
            try {
                re = new RegExp(sc.pattern);
            } catch (e) {
                re = null;
            }
            if (re && !re.test(text))
                return {error: `${show(text)} does not match the pattern '${sc.pattern}'`};
        }
        return {value: text};
    }

    function mark(msg) {
        err.textContent = msg || '';
        if (msg) input.setAttribute('aria-invalid', 'true');
        else input.removeAttribute('aria-invalid');
    }

    set(def);
    return {name, def, type, el, input, read, set, mark};
}

/* The conf of the form's fields: {conf, errors: [[field, msg]]}. */
function formConf(fields) {
    const conf = {};
    const errors = [];
    for (const f of fields) {
        const r = f.read();
        if (r.error) {
            errors.push([f, r.error]);
        } else if (r.unset) {
            if (f.def === null) errors.push([f, 'has no default: give a value']);
        } else if (f.def === null || !(sameValue(r.value, f.def) ||
                                       (!f.type && String(r.value) === String(f.def)))) {
            conf[f.name] = r.value;
        }
    }
    return {conf, errors};
}

export function openTrigger(dag, onDone) {
    const conf = h('textarea', {id: 'trigger-conf', class: 'code-input', rows: 6,
                                spellcheck: 'false', testid: 'trigger-conf',
                                placeholder: '{"param": "value"}'});
    const confLabel = h('label', {for: 'trigger-conf'}, 'Run configuration (JSON object, optional)');
    const fieldsBox = h('div', {class: 'param-fields', testid: 'trigger-form'},
                        h('p', {class: 'muted'}, 'Loading params…'));
    const rawToggle = h('input', {type: 'checkbox', id: 'trigger-raw', testid: 'trigger-raw-toggle'});
    const rawRow = h('div', {class: 'param-check raw-toggle'}, rawToggle,
                     h('label', {for: 'trigger-raw'}, 'Raw JSON'));
    const err = h('p', {class: 'form-error', testid: 'trigger-error', role: 'alert'});
    err.hidden = true;
    const submit = h('button', {type: 'submit', class: 'btn btn-primary', testid: 'trigger-submit'},
                     'Trigger');
    const cancel = h('button', {type: 'button', class: 'btn', testid: 'trigger-cancel'}, 'Cancel');
    const form = h('form', {method: 'dialog', class: 'dialog-form', novalidate: true},
                   h('h2', {id: 'trigger-title'}, 'Trigger ', h('code', null, dag)),
                   fieldsBox, rawRow, confLabel, conf, err,
                   h('div', {class: 'dialog-actions'}, cancel, submit));
    const dlg = h('dialog', {class: 'dialog', testid: 'trigger-dialog',
                             'aria-labelledby': 'trigger-title'}, form);

    let fields = []; /* empty: no params known, the raw textarea only */
    let raw = false;
    const setRaw = (on) => {
        raw = on;
        rawToggle.checked = on;
        fieldsBox.hidden = on;
        conf.hidden = !on;
        confLabel.hidden = !on;
        rawRow.hidden = fields.length === 0;
    };
    /* until the params are known: "Loading params..." and no way to submit */
    conf.hidden = confLabel.hidden = rawRow.hidden = true;
    submit.disabled = true;

    const close = () => {
        if (dlg.open) dlg.close();
        dlg.remove();
    };
    const fail = (msg, focus) => {
        err.textContent = msg;
        err.hidden = false;
        if (raw) conf.setAttribute('aria-invalid', 'true');
        (focus || (raw ? conf : submit)).focus();
    };
    const unfail = () => {
        err.textContent = '';
        err.hidden = true;
        conf.removeAttribute('aria-invalid');
        for (const f of fields) f.mark('');
    };
    /* the raw text as a conf object, or a message */
    const rawConf = () => {
        const text = conf.value.trim();
        if (!text) return {conf: null};
        let v;
        try {
            v = JSON.parse(text);
        } catch (e) {
            return {error: 'conf is not valid JSON: ' + e.message};
        }
        if (v === null || typeof v !== 'object' || Array.isArray(v))
            return {error: 'conf must be a JSON object, like {"name": "value"}'};
        return {conf: v};
    };

    rawToggle.addEventListener('change', () => {
        unfail();
        if (rawToggle.checked) {
            const {conf: c} = formConf(fields);
            conf.value = Object.keys(c).length ? JSON.stringify(c, null, 2) : '';
            setRaw(true);
            conf.focus();
            return;
        }
        const r = rawConf();
        if (r.error) {
            rawToggle.checked = true;
            fail(r.error);
            return;
        }
        for (const f of fields)
            f.set(r.conf && f.name in r.conf ? r.conf[f.name] : f.def);
        setRaw(false);
    });

    cancel.addEventListener('click', close);
    dlg.addEventListener('close', () => dlg.remove());
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        unfail();
        const body = {};
        if (raw) {
            const r = rawConf();
            if (r.error) {
                fail(r.error);
                return;
            }
            if (r.conf) body.conf = r.conf;
        } else {
            const {conf: c, errors} = formConf(fields);
            if (errors.length) {
                for (const [f, msg] of errors) f.mark(msg);
                fail(`param '${errors[0][0].name}': ${errors[0][1]}`, errors[0][0].input);
                return;
            }
            if (Object.keys(c).length) body.conf = c;
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
            /* the server's word; the field it names is marked too */
            const m = !raw && /param '([^']+)'/.exec(e.message || '');
            const f = m && fields.find((x) => x.name === m[1]);
            if (f) f.mark(e.message.replace(/^error: /, ''));
            fail(e.message, f ? f.input : null);
        } finally {
            submit.disabled = false;
        }
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    cancel.focus();

    /* the params' schemas make the form; without any (or when the DAG cannot be read), the
       raw textarea alone */
    const ready = (schema) => {
        if (!dlg.isConnected) return;
        submit.disabled = false;
        if (!schema || !Object.keys(schema).length) {
            setRaw(true);
            conf.focus();
            return;
        }
        fields = Object.keys(schema).map((n) => paramField(n, schema[n]));
        fieldsBox.replaceChildren(...fields.map((f) => f.el));
        setRaw(false);
        fields[0].input.focus();
    };
    api('GET', `/dags/${enc(dag)}`).then((o) => ready(o && o.params_schema), () => ready(null));
    return dlg;
}

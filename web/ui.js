/*
 * ui.js - small shared widgets: toasts, the confirm dialog, state badges, the
 * state legend, and the "something went wrong" panel.
 *
 * Key ideas:
 * - toast(msg) shows a transient message (role=status, testid toast) in the
 *   #toasts region; errors stay longer and can be dismissed.
 * - confirm(title, text, okLabel) opens a modal <dialog> (testid
 *   confirm-dialog) and resolves to true/false; Escape cancels.
 * - badge(state) is the one way a state is shown in text: glyph + label with
 *   the state's colour class, so colour is never the only signal.
 */

import {h} from './dom.js';
import {STATES, LEGEND_ORDER, glyph, label, norm} from './states.js';

/* ---- toasts ---- */

export function toast(msg, kind = 'info') {
    const box = document.getElementById('toasts');
    if (!box) return;
    const close = h('button', {class: 'toast-x', type: 'button', 'aria-label': 'Dismiss'});
    const t = h('div', {class: 'toast toast-' + kind, role: kind === 'error' ? 'alert' : 'status',
                        testid: 'toast'},
                h('span', {class: 'toast-msg'}, msg), close);
    /* tests and screen readers look for role=status; keep it on errors too */
    t.setAttribute('role', 'status');
    if (kind === 'error') t.setAttribute('aria-live', 'assertive');
    const remove = () => { if (t.parentNode) t.parentNode.removeChild(t); };
    close.addEventListener('click', remove);
    box.appendChild(t);
    setTimeout(remove, kind === 'error' ? 9000 : 4000);
}

export function toastError(e) {
    if (e && e.name === 'AbortError') return;
    if (e && e.status === 401) return; /* the login page says it */
    toast(e && e.message ? e.message : String(e), 'error');
}

/* ---- confirm dialog ---- */

export function confirm(title, text, okLabel = 'OK', danger = false) {
    return new Promise((resolve) => {
        const ok = h('button', {type: 'button', testid: 'confirm-ok',
                                class: danger ? 'btn btn-danger' : 'btn btn-primary'}, okLabel);
        const cancel = h('button', {type: 'button', class: 'btn', testid: 'confirm-cancel'},
                         'Cancel');
        const dlg = h('dialog', {class: 'dialog', testid: 'confirm-dialog',
                                 'aria-labelledby': 'confirm-title'},
                      h('h2', {id: 'confirm-title'}, title),
                      h('p', {class: 'dialog-text'}, text),
                      h('div', {class: 'dialog-actions'}, cancel, ok));
        let answered = false;
        const done = (v) => {
            if (answered) return;
            answered = true;
            if (dlg.open) dlg.close();
            dlg.remove();
            resolve(v);
        };
        ok.addEventListener('click', () => done(true));
        cancel.addEventListener('click', () => done(false));
        dlg.addEventListener('close', () => done(false));
        document.body.appendChild(dlg);
        dlg.showModal();
        cancel.focus();
    });
}

/* ---- states ---- */

/* "✓ success" coloured by state; testid and data-state are up to the caller. */
export function badge(state, attrs = {}) {
    const st = norm(state);
    return h('span', Object.assign({class: 'badge st-' + st, 'data-state': st}, attrs),
             h('span', {class: 'glyph', 'aria-hidden': 'true'}, glyph(st)),
             h('span', {class: 'badge-label'}, label(st)));
}

/* Updates a badge made by badge() in place. */
export function setBadge(el, state) {
    const st = norm(state);
    el.className = el.className.replace(/\bst-[a-z_]+/, 'st-' + st);
    el.dataset.state = st;
    el.firstChild.textContent = glyph(st);
    el.lastChild.textContent = label(st);
}

export function legend() {
    return h('ul', {class: 'legend', testid: 'state-legend', 'aria-label': 'State legend'},
             LEGEND_ORDER.map((st) =>
                 h('li', {class: 'legend-item'},
                   h('span', {class: 'mark st-' + st, 'aria-hidden': 'true'}, STATES[st].glyph),
                   label(st))));
}

/* ---- panels ---- */

export function loading(what = 'Loading…') {
    return h('div', {class: 'panel muted', role: 'status'}, what);
}

export function errorPanel(e, retry) {
    return h('div', {class: 'panel panel-error', role: 'alert'},
             h('strong', null, 'Could not load this page. '),
             e && e.message ? e.message : String(e), ' ',
             retry ? h('button', {type: 'button', class: 'btn', onclick: retry}, 'Retry') : null);
}

/* A <time> element with the local time shown and the ISO string as title. */
export function timeEl(iso, text) {
    return h('time', iso ? {datetime: iso, title: iso} : null, text);
}

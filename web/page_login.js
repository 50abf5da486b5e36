/*
 * page_login.js - the login form (#/login).
 *
 * Key idea: POST /api/v1/auth/token with user name and password; the token
 * goes to sessionStorage (api.js) and the user goes back to where they were
 * (or the DAG list). Errors (wrong password, 429 slow down, server down) are
 * shown in the form's login-error line; so is the reason the user was sent
 * here ("session expired, log in again").
 */

import {login, takeFlash, takeNext, setNext} from './api.js';
import {h, replace} from './dom.js';

export function mount(root, route) {
    document.title = 'Log in · baram';
    const flash = takeFlash();
    if (route.query.next) setNext(route.query.next);

    const user = h('input', {id: 'login-username', name: 'username', type: 'text', required: true,
                             autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false',
                             testid: 'login-username'});
    const pass = h('input', {id: 'login-password', name: 'password', type: 'password',
                             required: true, autocomplete: 'current-password',
                             testid: 'login-password'});
    const err = h('p', {class: 'form-error', testid: 'login-error', role: 'alert',
                        'aria-live': 'assertive'}, flash || '');
    if (!flash) err.hidden = true;
    const submit = h('button', {type: 'submit', class: 'btn btn-primary btn-wide',
                                testid: 'login-submit'}, 'Log in');

    const form = h('form', {class: 'login-form', testid: 'login-form', novalidate: true,
                            'aria-labelledby': 'login-heading'},
                   h('h1', {id: 'login-heading'}, 'Log in to baram'),
                   h('label', {for: 'login-username'}, 'User name'), user,
                   h('label', {for: 'login-password'}, 'Password'), pass,
                   err, submit);

    let alive = true;
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const u = user.value.trim(), p = pass.value;
        if (!u || !p) {
            err.textContent = !u ? 'enter your user name' : 'enter your password';
            err.hidden = false;
            (!u ? user : pass).focus();
            return;
        }
        submit.disabled = true;
        submit.textContent = 'Logging in…';
        try {
            await login(u, p);
            if (!alive) return;
            location.hash = takeNext();
        } catch (e) {
            if (!alive) return;
            err.textContent =
                e.status === 401 ? 'wrong user name or password'
                : e.status === 429 ? 'too many failed logins; wait a moment and try again'
                : e.message;
            err.hidden = false;
            pass.select();
            pass.focus();
        } finally {
            submit.disabled = false;
            submit.textContent = 'Log in';
        }
    });

    replace(root, h('div', {class: 'login-wrap'}, form));
    user.focus();
    return {unmount() { alive = false; }};
}

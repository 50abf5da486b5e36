/*
 * dom.js - tiny helpers to build DOM and SVG elements without a framework.
 *
 * Key idea: h('tag', {attrs}, ...children) returns a real element. Attributes
 * named onX become event listeners, 'testid' becomes data-testid, 'class' and
 * 'text' are shortcuts; everything else goes through setAttribute. There is no
 * inline style anywhere (the page's CSP forbids it): styling lives in
 * style.css, dynamic geometry uses SVG attributes or element.style.prop.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
    if (!attrs) return;
    for (const k in attrs) {
        const v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.setAttribute('class', v);
        else if (k === 'text') el.textContent = v;
        else if (k === 'testid') el.setAttribute('data-testid', v);
        else if (k.startsWith('on') && typeof v === 'function')
            el.addEventListener(k.slice(2).toLowerCase(), v);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else el.setAttribute(k, v === true ? '' : String(v));
    }
}

function append(el, children) {
    for (const c of children) {
        if (c === undefined || c === null || c === false) continue;
        if (Array.isArray(c)) append(el, c);
        else if (c instanceof Node) el.appendChild(c);
        else el.appendChild(document.createTextNode(String(c)));
    }
}

/* An HTML element: h('a', {href: '#/', class: 'x'}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    apply(el, attrs);
    append(el, children);
    return el;
}

/* An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    apply(el, attrs);
    append(el, children);
    return el;
}

/* Removes every child of el. */
export function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
}

/* Replaces the children of el with the given ones. */
export function replace(el, ...children) {
    clear(el);
    append(el, children);
}

/* Text made safe inside markup built as a string (element text or a quoted attribute). */
export function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;',
                                                   '"': '&quot;', "'": '&#39;'}[c]));
}

/* Escapes a string for use inside a CSS attribute selector value. */
export function cssq(v) {
    return window.CSS && CSS.escape ? CSS.escape(v) : String(v).replace(/["\\]/g, '\\$&');
}

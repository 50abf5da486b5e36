/*
 * events.js - live updates: Server-Sent Events from GET /api/v1/events read
 * over fetch (EventSource cannot send the Authorization header).
 *
 * Key ideas:
 * - The body is read as a stream; frames are split on blank lines and their
 *   id:, event:, data: fields parsed (comment lines like ": keep-alive" are
 *   skipped).
 * - The id of the last frame is remembered; when the stream drops, we
 *   reconnect after a short, growing delay with the Last-Event-ID header, so
 *   nothing is missed. Without an id to resume from (no event seen yet), the
 *   page reloads its data once the stream is back.
 * - "event: overflow" means the server dropped frames we did not read: the
 *   page reloads its data (onReload) and we reconnect from "now".
 * - A 401 ends the session (api.js sends the user to the login page).
 * - The status of the connection (live / reconnecting) is published to
 *   onStatus so the header can show it.
 */

import {BASE, getToken, sessionExpired} from './api.js';

let statusListener = null;

/* The header registers here to show whether live updates flow. */
export function onLiveStatus(fn) {
    statusListener = fn;
}

function setStatus(s) {
    if (statusListener) statusListener(s);
}

/*
 * subscribe({dag, run}, onEvent, onReload) starts listening; returns a
 * function that stops. onEvent(ev) gets the parsed data object
 * {id, type: 'run'|'task_instance', dag, run_id, task_id?, try?, state, at}.
 */
export function subscribe(filter, onEvent, onReload) {
    let stopped = false;
    let lastId = null;
    let ctrl = null;
    let delay = 500;
    let timer = null;
    let dropped = false; /* the stream ended or failed since the last connect */

    const params = new URLSearchParams();
    if (filter && filter.dag) params.set('dag', filter.dag);
    if (filter && filter.run) params.set('run', filter.run);
    const url = BASE + '/events' + (params.toString() ? '?' + params : '');

    function handleFrame(frame) {
        let id = null, kind = 'message', data = '';
        for (const line of frame.split('\n')) {
            if (!line || line[0] === ':') continue;
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            let value = i < 0 ? '' : line.slice(i + 1);
            if (value[0] === ' ') value = value.slice(1);
            if (field === 'id') id = value;
            else if (field === 'event') kind = value;
            else if (field === 'data') data += (data ? '\n' : '') + value;
        }
        if (id !== null) lastId = id;
        if (kind === 'overflow') {
            lastId = null; /* start again from now, after reloading everything */
            if (onReload) onReload();
            return;
        }
        if (!data) return;
        let ev;
        try {
            ev = JSON.parse(data);
        } catch (e) {
            return;
        }
        if (!ev.type) ev.type = kind;
        try {
            onEvent(ev);
        } catch (e) {
            console.error('event handler failed', e);
        }
    }

    async function connect() {
        if (stopped) return;
        const tok = getToken();
        if (!tok) return;
        ctrl = new AbortController();
        const headers = {Authorization: 'Bearer ' + tok, Accept: 'text/event-stream'};
        if (lastId !== null) headers['Last-Event-ID'] = lastId;
        try {
            const res = await fetch(url, {headers, signal: ctrl.signal, cache: 'no-store'});
            if (res.status === 401) {
                sessionExpired();
                return;
            }
            if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
            setStatus('live');
            delay = 500;
            /* back after a drop with no id to resume from: what happened meanwhile is
             * unknown, so the page reloads its data once */
            if (dropped && lastId === null && onReload) onReload();
            dropped = false;
            const reader = res.body.getReader();
            const dec = new TextDecoder();
            let buf = '';
            for (;;) {
                const {value, done} = await reader.read();
                if (done) break;
                buf += dec.decode(value, {stream: true});
                if (buf.indexOf('\r') >= 0) buf = buf.replace(/\r\n?/g, '\n');
                let end;
                while ((end = buf.indexOf('\n\n')) >= 0) {
                    const frame = buf.slice(0, end);
                    buf = buf.slice(end + 2);
                    handleFrame(frame);
                    if (stopped) return;
                }
            }
        } catch (e) {
            if (stopped) return;
        }
        if (stopped) return;
        dropped = true;
        setStatus('reconnecting');
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
    }

    connect();
    return function stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        if (ctrl) ctrl.abort();
    };
}

/*
 * A coalescer: add(key, value) many times, fn(map) runs once per animation
 * frame with the latest value of each key. Used so a burst of 2,000 events
 * becomes one DOM update.
 */
export function coalesce(fn, minGapMs = 0) {
    let pending = new Map();
    let scheduled = false;
    let last = 0;
    function flush() {
        if (!scheduled) return;
        scheduled = false;
        last = performance.now();
        const m = pending;
        pending = new Map();
        if (m.size) fn(m);
    }
    function schedule() {
        /* rAF does not fire in hidden tabs: a timer makes sure we still catch up */
        requestAnimationFrame(flush);
        setTimeout(flush, 250);
    }
    return {
        add(key, value) {
            pending.set(key, value);
            if (scheduled) return;
            scheduled = true;
            const wait = last + minGapMs - performance.now();
            if (wait > 0) setTimeout(schedule, wait);
            else schedule();
        },
        /* minGapMs can change once the size of what is drawn is known */
        setGap(ms) {
            minGapMs = ms;
        },
    };
}

/*
 * A throttled call: fn runs a moment after the first call, then at most once
 * per `ms` while calls keep coming (the last call is never lost). ms may be
 * a function, for gaps that depend on how much there is to draw.
 */
export function throttle(fn, ms) {
    const gap = typeof ms === 'function' ? ms : () => ms;
    let timer = null, again = false;
    function fire() {
        timer = null;
        if (again) {
            again = false;
            fn();
            timer = setTimeout(fire, gap());
        }
    }
    const t = function () {
        again = true;
        if (!timer) timer = setTimeout(fire, gap() / 4);
    };
    t.cancel = () => { if (timer) clearTimeout(timer); timer = null; again = false; };
    return t;
}

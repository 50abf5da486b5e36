/*
 * page_task.js - one task instance (#/dags/DAG/runs/RUN/tasks/TASK?try=N):
 * its state, facts, output and message, the table of its tries, and the log
 * of the selected try with a live tail.
 *
 * Key ideas:
 * - Log tail: GET .../logs?try=N&offset=B answers text and X-Next-Offset.
 *   We ask again from that offset every TAIL_MS while the try has not ended,
 *   at once while answers come back full (a long log catching up), and stop
 *   once the try has ended and an answer brings nothing new. Bytes are
 *   decoded with a streaming TextDecoder so a UTF-8 character split between
 *   two answers is not broken.
 * - Follow (on by default): new text scrolls the log to the bottom. Scrolling
 *   up turns it off, scrolling back to the bottom turns it on again.
 * - Without ?try= the page follows the latest try: when a retry starts, its
 *   log replaces the old one. A try still queued has no log: none is asked for
 *   until it runs (on PostgreSQL it may wait long for a worker).
 * - Live: events of this task update the state and the try at once and
 *   refetch the details (throttled).
 */

import {get, raw, enc, link, isOperator} from './api.js';
import {h, replace} from './dom.js';
import {subscribe, throttle} from './events.js';
import * as fmt from './fmt.js';
import {setQuery} from './router.js';
import {openMarkTask} from './ops_dialogs.js';
import {isEnded} from './states.js';
import {badge, setBadge, toastError, loading, errorPanel, timeEl} from './ui.js';

const TAIL_MS = 500;
const WAITING = new Set(['none', 'scheduled', 'queued']); /* a try in these has no log yet */
const CHUNK = 1024 * 1024; /* the server's largest answer */

export function mount(root, route) {
    const {dag, run, task} = route.params;
    document.title = `${task} · ${run} · baram`;
    const ctl = new AbortController();
    let alive = true;

    let ti = null;
    let wantTry = route.query.try ? Number(route.query.try) : null; /* null: follow the latest */
    let shownTry = null;

    /* ---- skeleton ---- */
    const stateBadge = badge('none', {testid: 'task-state'});
    const facts = h('dl', {class: 'facts'});
    const outBox = h('div', {class: 'task-output'});
    const triesBody = h('tbody');
    const trySel = h('select', {id: 'try-selector', class: 'select', testid: 'try-selector'});
    const follow = h('button', {type: 'button', class: 'toggle', testid: 'log-follow',
                                'aria-pressed': 'true', title: 'Keep the newest log lines in view'},
                     h('span', {class: 'toggle-knob', 'aria-hidden': 'true'}),
                     h('span', {class: 'toggle-text'}, 'follow'));
    const logStatus = h('span', {class: 'muted small', role: 'status'});
    const pre = h('pre', {class: 'log', testid: 'log', tabindex: '0', 'aria-label': 'Log',
                          'aria-live': 'off'});
    const body = h('div', null, loading());

    replace(root,
            h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
              h('a', {href: link.dags()}, 'DAGs'), ' / ',
              h('a', {href: link.dag(dag, {run})}, dag), ' / ',
              h('a', {href: link.run(dag, run)}, run), ' / ', h('span', null, 'task')),
            h('div', {class: 'page-head'},
              h('div', null, h('h1', {testid: 'task-title', class: 'task-title'}, task),
                stateBadge),
              /* a mapped instance's mark is its task's (every instance) */
              isOperator() ? h('div', {class: 'page-actions'},
                               h('button', {type: 'button', class: 'btn', testid: 'task-mark',
                                            onclick: () => openMarkTask(
                                                dag, run, task.replace(/\[\d+\]$/, ''))},
                                 'Mark…')) : null),
            body);

    function drawSkeleton() {
        replace(body,
                facts, outBox,
                h('section', {class: 'card', 'aria-labelledby': 'h-tries'},
                  h('div', {class: 'card-head'}, h('h2', {id: 'h-tries'}, 'Tries')),
                  h('div', {class: 'table-scroll'},
                    h('table', {class: 'table'},
                      h('thead', null, h('tr', null,
                                         ['Try', 'State', 'Exit code', 'Queued', 'Started', 'Ended',
                                          'Duration', 'PID', 'Host', 'Worker']
                                             .map((c) => h('th', {scope: 'col'}, c)))),
                      triesBody))),
                h('section', {class: 'card', 'aria-labelledby': 'h-log'},
                  h('div', {class: 'card-head'}, h('h2', {id: 'h-log'}, 'Log'),
                    h('label', {for: 'try-selector', class: 'inline-label'}, 'Try'), trySel,
                    follow, logStatus),
                  pre));
    }

    /* ---- drawing ---- */

    function tries() {
        return (ti && ti.tries) || [];
    }

    function tryState(n) {
        const t = tries().find((x) => x.try_number === n);
        if (t) return t.state;
        return ti && n === ti.try_number ? ti.state : 'none';
    }

    function draw() {
        setBadge(stateBadge, ti.state);
        const fact = (k, v) => h('div', {class: 'fact'}, h('dt', null, k), h('dd', null, v));
        replace(facts,
                fact('DAG', h('a', {href: link.dag(dag, {run})}, dag)),
                fact('Run', h('a', {href: link.run(dag, run)}, run)),
                fact('Try', `${ti.try_number || 0}${ti.max_tries ? ' of ' + ti.max_tries : ''}`),
                fact('Exit code', ti.exit_code === null || ti.exit_code === undefined ? '—'
                                  : String(ti.exit_code)),
                fact('Queued', timeEl(ti.queued_at, fmt.time(ti.queued_at))),
                fact('Started', timeEl(ti.started_at, fmt.time(ti.started_at))),
                fact('Ended', timeEl(ti.ended_at, fmt.time(ti.ended_at))),
                fact('Duration', fmt.duration(ti.duration_s)),
                fact('Pool', ti.pool || '—'),
                fact('Priority', ti.priority === undefined ? '—' : String(ti.priority)),
                ti.map_index !== null && ti.map_index !== undefined
                    ? fact('Map index', String(ti.map_index)) : null);
        replace(outBox,
                ti.note && ti.state === 'queued'
                    ? h('div', {class: 'banner banner-warn', role: 'note', testid: 'task-note'},
                        ti.note) : null,
                ti.message ? h('div', {class: 'banner banner-warn', role: 'note'},
                               h('strong', null, 'Message: '), ti.message) : null,
                ti.output ? h('div', {class: 'card'},
                              h('div', {class: 'card-head'}, h('h2', null, 'Output')),
                              h('pre', {class: 'output'}, ti.output)) : null);

        replace(triesBody, tries().length ? tries().map((t) => {
            const code = t.exit_code === null || t.exit_code === undefined ? '—'
                         : String(t.exit_code);
            const extra = t.timed_out ? ' (timed out)'
                          : t.term_signal ? ` (signal ${t.term_signal})` : '';
            return h('tr', {testid: 'try-row', 'data-try': t.try_number,
                            class: t.try_number === shownTry ? 'row-selected' : ''},
                     h('td', null, h('a', {href: link.task(dag, run, task, t.try_number),
                                           'aria-label': `show the log of try ${t.try_number}`},
                                     String(t.try_number))),
                     h('td', null, badge(t.state)),
                     h('td', null, code + extra),
                     h('td', null, timeEl(t.queued_at, fmt.time(t.queued_at))),
                     h('td', null, timeEl(t.started_at, fmt.time(t.started_at))),
                     h('td', null, timeEl(t.ended_at, fmt.time(t.ended_at))),
                     h('td', null, fmt.duration(t.duration_s)),
                     h('td', null, t.pid ? String(t.pid) : '—'),
                     h('td', null, t.hostname || '—'),
                     h('td', {testid: 'try-worker'}, t.worker || '—'));
        }) : h('tr', null, h('td', {colspan: 10, class: 'muted'}, 'No try has started yet.')));

        const nums = tries().map((t) => t.try_number);
        if (ti.try_number && !nums.includes(ti.try_number)) nums.push(ti.try_number);
        replace(trySel, nums.length ? nums.map((n) => h('option', {value: String(n)},
                                                        `try ${n}`))
                                    : h('option', {value: ''}, 'no tries'));
        trySel.disabled = !nums.length;
        if (shownTry) trySel.value = String(shownTry);
    }

    /* ---- log tail ---- */

    let tail = null; /* {n, offset, dec, timer, stopped} */

    function latestTry() {
        const nums = tries().map((t) => t.try_number);
        return Math.max(ti && ti.try_number ? ti.try_number : 0, ...nums, 0) || null;
    }

    function startLog(n) {
        stopLog();
        shownTry = n;
        pre.textContent = '';
        if (!n) {
            logStatus.textContent = 'no log: the task has not started';
            return;
        }
        trySel.value = String(n);
        if (WAITING.has(tryState(n))) {
            /* handed out but not started (on PostgreSQL it may wait for a worker): no log to
             * ask for yet; the try's 'running' event starts the tail */
            logStatus.textContent = 'no log yet: the try has not started';
            return;
        }
        for (const tr of triesBody.rows)
            tr.classList.toggle('row-selected', tr.getAttribute('data-try') === String(n));
        tail = {n, offset: 0, dec: new TextDecoder(), timer: null, stopped: false};
        poll(tail);
    }

    function stopLog() {
        if (tail) {
            tail.stopped = true;
            if (tail.timer) clearTimeout(tail.timer);
        }
        tail = null;
    }

    function atBottom() {
        return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
    }

    async function poll(t) {
        if (t.stopped || !alive) return;
        t.timer = null;
        let got = 0;
        try {
            const res = await raw('GET', `/dags/${enc(dag)}/runs/${enc(run)}/tasks/${enc(task)}` +
                                         `/logs?try=${t.n}&offset=${t.offset}`,
                                  {signal: ctl.signal, headers: {Accept: 'text/plain'}});
            const buf = await res.arrayBuffer();
            if (t.stopped) return;
            got = buf.byteLength;
            const next = Number(res.headers.get('X-Next-Offset'));
            t.offset = isFinite(next) && next >= t.offset ? next : t.offset + got;
            if (got) {
                const text = t.dec.decode(buf, {stream: true});
                const stick = follow.getAttribute('aria-pressed') === 'true';
                pre.appendChild(document.createTextNode(text));
                if (stick) pre.scrollTop = pre.scrollHeight;
            }
        } catch (e) {
            if (t.stopped || e.name === 'AbortError') return;
            if (e.status !== 404) {
                logStatus.textContent = 'log: ' + e.message;
                t.timer = setTimeout(() => poll(t), TAIL_MS * 4);
                return;
            }
            /* 404: the try has no log (yet) */
        }
        const ended = isEnded(tryState(t.n)) || (ti && t.n < (ti.try_number || 0));
        if (got >= CHUNK) {
            t.timer = setTimeout(() => poll(t), 0);
        } else if (!ended || got > 0) {
            logStatus.textContent = ended ? '' : '● live';
            t.timer = setTimeout(() => poll(t), TAIL_MS);
        } else {
            logStatus.textContent = t.offset ? `${t.offset} bytes` : 'the log is empty';
            t.stopped = true;
        }
    }

    pre.addEventListener('scroll', () => {
        follow.setAttribute('aria-pressed', atBottom() ? 'true' : 'false');
    });
    follow.addEventListener('click', () => {
        const on = follow.getAttribute('aria-pressed') !== 'true';
        follow.setAttribute('aria-pressed', on ? 'true' : 'false');
        if (on) pre.scrollTop = pre.scrollHeight;
    });
    trySel.addEventListener('change', () => {
        const n = Number(trySel.value);
        if (!n) return;
        wantTry = n;
        setQuery({try: n});
        startLog(n);
    });

    /* ---- data ---- */

    async function fetchTi() {
        return get(`/dags/${enc(dag)}/runs/${enc(run)}/tasks/${enc(task)}`, {signal: ctl.signal});
    }

    async function load() {
        try {
            ti = await fetchTi();
            if (!alive) return;
            if (!body.contains(facts)) drawSkeleton();
            const n = wantTry || latestTry();
            shownTry = n;
            draw();
            startLog(n);
        } catch (e) {
            if (!alive || e.name === 'AbortError') return;
            if (!ti) replace(body, errorPanel(e, load));
            else toastError(e);
        }
    }

    const refetch = throttle(async () => {
        try {
            const fresh = await fetchTi();
            if (!alive) return;
            ti = fresh;
            draw();
            const latest = latestTry();
            if (!wantTry && latest && latest !== shownTry) startLog(latest);
            else if (tail && tail.stopped && !isEnded(tryState(shownTry))) startLog(shownTry);
        } catch (e) {
            if (alive && e.name !== 'AbortError') toastError(e);
        }
    }, 1000);

    const stop = subscribe({dag, run}, (ev) => {
        if (ev.type !== 'task_instance' || ev.task_id !== task || !ti) return;
        ti.state = ev.state;
        if (ev.try) {
            ti.try_number = Math.max(ti.try_number || 0, ev.try);
            const t = tries().find((x) => x.try_number === ev.try);
            if (t) t.state = ev.state;
        }
        setBadge(stateBadge, ev.state);
        refetch();
        /* a tail that stopped (e.g. a cleared task runs again) restarts */
        if (!wantTry && ev.try && ev.try !== shownTry && ev.state === 'running') startLog(ev.try);
        else if (tail === null || tail.stopped) {
            if (ev.state === 'running' && shownTry === ev.try) startLog(shownTry);
        }
    }, load);

    load();

    return {
        update(q) {
            const n = q.try ? Number(q.try) : null;
            if (n === wantTry) return;
            wantTry = n;
            startLog(n || latestTry());
        },
        unmount() {
            alive = false;
            ctl.abort();
            stop();
            stopLog();
            refetch.cancel();
        },
    };
}

/*
 * dag_code.js - the DAG page's Code tab: the source of a version of the DAG
 * (the one the scheduler has loaded, or the newest), a picker of the stored
 * versions (GET /dags/{dag}/versions), and the line diff of two of them
 * (diff.js). Sources come from GET /dags/{dag}/versions/{hash}, each fetched
 * once (DagData.source).
 *
 * Line numbers are drawn by CSS from data-ln, so copying the code copies
 * only the code.
 */

import {h, replace} from './dom.js';
import {lineDiff} from './diff.js';
import * as fmt from './fmt.js';
import {loading, toastError} from './ui.js';

const MARK = {same: ' ', del: '−', add: '+'};

function versionLabel(v) {
    return `${v.hash.slice(0, 12)} · first seen ${fmt.time(v.created_at)} · ` +
           `${v.runs} run${v.runs === 1 ? '' : 's'}${v.current ? ' · current' : ''}`;
}

function codeBlock(src) {
    const lines = src.split('\n');
    if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
    return h('pre', {class: 'code', testid: 'code', tabindex: '0'},
             lines.map((t, i) => h('span', {class: 'code-line', 'data-ln': i + 1}, t, '\n')));
}

function diffBlock(oldSrc, newSrc) {
    const d = lineDiff(oldSrc, newSrc);
    const adds = d.filter((x) => x.kind === 'add').length;
    const dels = d.filter((x) => x.kind === 'del').length;
    return [
        h('p', {class: 'muted small', testid: 'diff-summary'},
          adds || dels ? `+${adds} −${dels} lines` : 'the two versions are the same'),
        h('pre', {class: 'code code-diff', testid: 'code-diff', tabindex: '0'},
          d.map((x) => h('span', {class: 'code-line diff-' + x.kind, testid: 'diff-line',
                                  'data-kind': x.kind, 'data-ln': x.b || x.a,
                                  'aria-label': x.kind === 'same' ? null
                                      : (x.kind === 'add' ? 'added: ' : 'removed: ') + x.text},
                         MARK[x.kind] + ' ' + x.text, '\n'))),
    ];
}

/* The Code view of data's DAG: {el, show()} (show loads what it lacks and draws). */
export function createCodeView(data) {
    const pick = h('select', {id: 'version-selector', testid: 'version-selector',
                              class: 'select'});
    const cmp = h('select', {id: 'version-compare', testid: 'version-compare', class: 'select'});
    const body = h('div', {class: 'code-body'}, loading());
    const el = h('div', {class: 'code-view', testid: 'code-view'},
                 h('div', {class: 'run-picker code-pickers'},
                   h('label', {for: 'version-selector'}, 'Version'), pick,
                   h('label', {for: 'version-compare'}, 'Compare with'), cmp),
                 body);
    let seq = 0;

    async function draw() {
        const mine = ++seq;
        const hash = pick.value, other = cmp.value;
        if (!hash) return;
        try {
            const [src, old] = await Promise.all([data.source(hash),
                                                  other ? data.source(other) : null]);
            if (mine !== seq) return;
            replace(body, other ? diffBlock(old, src) : codeBlock(src));
        } catch (e) {
            if (e.name !== 'AbortError') toastError(e);
        }
    }
    pick.addEventListener('change', draw);
    cmp.addEventListener('change', draw);

    async function show() {
        const vs = await data.loadVersions();
        const list = vs.versions || [];
        if (!list.length) {
            pick.disabled = cmp.disabled = true;
            replace(body, h('p', {class: 'panel muted'},
                            'No version of this DAG is stored yet: it appears once the ' +
                            'scheduler loads the file or a run starts.'));
            return;
        }
        const keep = pick.value, keepCmp = cmp.value;
        replace(pick, list.map((v) => h('option', {value: v.hash}, versionLabel(v))));
        replace(cmp, h('option', {value: ''}, '— (none)'),
                list.map((v) => h('option', {value: v.hash}, versionLabel(v))));
        pick.value = keep && list.some((v) => v.hash === keep) ? keep
            : vs.current && list.some((v) => v.hash === vs.current) ? vs.current : list[0].hash;
        cmp.value = keepCmp && list.some((v) => v.hash === keepCmp) ? keepCmp : '';
        await draw();
    }

    return {el, show};
}

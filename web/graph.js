/*
 * graph.js - draws a DAG as an SVG from GET /dags/{dag}/graph.
 *
 * Key ideas:
 * - The server already computed the layout: a node's layer is its column
 *   (left to right), its order its row. Nothing is measured in the browser.
 * - The SVG is built as one markup string and parsed once (innerHTML): for
 *   2,000 nodes that is far faster than 12,000 createElementNS calls.
 * - A node is an SVG <a> (focusable, keyboard-usable link to the task
 *   instance of the selected run) with a state badge (colour + glyph) and
 *   its id. Colours come from style.css through data-state, so a state change
 *   is one attribute write and one glyph text write.
 * - Edges are cubic curves. Up to EDGE_SPLIT edges each is its own <path>
 *   (arrowheads, hover highlight); above that all edges leaving one layer
 *   share one <path> with many segments, which keeps huge graphs cheap.
 * - Zoom (buttons, Ctrl+wheel): the SVG keeps its viewBox and changes its
 *   width/height; the surrounding box scrolls, and can be dragged to pan.
 *   Zoomed far out, node text is hidden (unreadable anyway; the state is
 *   still in each node's colour, tooltip and aria-label).
 */

import {esc, h} from './dom.js';
import {glyph, label, norm} from './states.js';

const NODE_W = 180, NODE_H = 32, COL_GAP = 64, ROW_GAP = 14, PAD = 28;
const COL_W = NODE_W + COL_GAP, ROW_H = NODE_H + ROW_GAP;
const EDGE_SPLIT = 1500;
const FAR_ZOOM = 0.45; /* below this zoom the labels and glyphs are not drawn */
const LABEL_CHARS = 21;

function short(id) {
    return id.length <= LABEL_CHARS ? id : id.slice(0, LABEL_CHARS - 1) + '…';
}

/*
 * createGraph(graph, {href(task, node) -> url|null, onNode(task), states: Map task->state})
 * returns {el, setStates(Map task->state), setHrefs(), zoomFit()}.
 */
export function createGraph(graph, opts = {}) {
    const nodes = graph.nodes || [];
    const edges = graph.edges || [];

    /* rows per layer, for centring each column */
    let layers = 0, maxRows = 0;
    const rowsIn = [];
    for (const n of nodes) {
        layers = Math.max(layers, n.layer + 1);
        rowsIn[n.layer] = Math.max(rowsIn[n.layer] || 0, n.order + 1);
    }
    for (let i = 0; i < layers; i++) maxRows = Math.max(maxRows, rowsIn[i] || 0);
    const W = PAD * 2 + Math.max(1, layers) * COL_W - COL_GAP;
    const H = PAD * 2 + Math.max(1, maxRows) * ROW_H - ROW_GAP + 6;

    /*
     * Columns are centred vertically (balanced fan-outs) unless an edge skips
     * a layer: then rows stay aligned across columns, so such an edge can run
     * in the free lane between two rows instead of behind the nodes it skips.
     */
    const layerOf = new Map(nodes.map((n) => [n.id, n.layer]));
    const skips = edges.some((e) => layerOf.get(e.to) - layerOf.get(e.from) > 1);
    const pos = new Map(); /* id -> {x, y, layer} */
    for (const n of nodes) {
        const off = skips ? 0 : ((maxRows - (rowsIn[n.layer] || 0)) * ROW_H) / 2;
        pos.set(n.id, {x: PAD + n.layer * COL_W, y: PAD + off + n.order * ROW_H, layer: n.layer});
    }

    /* ---- edges ---- */
    const split = edges.length <= EDGE_SPLIT;
    const edgeParts = [];
    const byLayer = new Map();
    for (const e of edges) {
        const a = pos.get(e.from), b = pos.get(e.to);
        if (!a || !b) continue;
        const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x - (split ? 6 : 0),
              y2 = b.y + NODE_H / 2;
        let d;
        if (b.layer - a.layer > 1) {
            /* over the lane just above the source row, turning in the column gaps */
            const lane = a.y - ROW_GAP / 2, t = COL_GAP / 2 - 4;
            d = `M${x1} ${y1}C${x1 + t} ${y1} ${x1 + t / 2} ${lane} ${x1 + t} ${lane}` +
                `L${x2 - t} ${lane}C${x2 - t / 2} ${lane} ${x2 - t} ${y2} ${x2} ${y2}`;
        } else {
            const dx = Math.max(24, (x2 - x1) / 2);
            d = `M${x1} ${y1}C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}`;
        }
        if (split) {
            edgeParts.push(`<path class="gedge" data-testid="graph-edge"` +
                           ` data-from="${esc(e.from)}" data-to="${esc(e.to)}" d="${d}"` +
                           ` marker-end="url(#arrow)"/>`);
        } else {
            if (!byLayer.has(a.layer)) byLayer.set(a.layer, []);
            byLayer.get(a.layer).push(d);
        }
    }
    if (!split)
        for (const [layer, ds] of byLayer)
            edgeParts.push(`<path class="gedge gedge-bundle" data-testid="graph-edge"` +
                           ` data-layer="${layer}" d="${ds.join('')}"/>`);

    /* ---- nodes ---- */
    /* the first states are written into the markup: no second pass over the nodes */
    const init = opts.states || new Map();
    const nodeParts = [];
    for (const n of nodes) {
        const p = pos.get(n.id);
        const href = opts.href ? opts.href(n.id, n) : null;
        const st = norm(init.get(n.id));
        const text = esc(`${n.id}: ${label(st)}`);
        const stack = n.mapped
            ? `<rect class="gnode-stack" x="5" y="-5" width="${NODE_W}" height="${NODE_H}" rx="5"/>`
            : '';
        const kind = n.kind && n.kind !== 'run'
            ? `<text class="gnode-kind" x="${NODE_W - 6}" y="${NODE_H / 2 + 4}">` +
              `${esc(n.kind)}</text>`
            : '';
        nodeParts.push(
            `<a class="gnode" data-testid="graph-node" data-task="${esc(n.id)}"` +
            ` data-state="${st}"` +
            (href ? ` href="${esc(href)}"` : ' tabindex="0"') +
            ` transform="translate(${p.x},${p.y})" aria-label="${text}">` +
            stack +
            `<rect class="gnode-box" width="${NODE_W}" height="${NODE_H}" rx="5"/>` +
            `<rect class="gnode-badge" width="${NODE_H}" height="${NODE_H}" rx="5"/>` +
            `<text class="gnode-glyph" x="${NODE_H / 2}" y="${NODE_H / 2 + 5}">` +
            `${glyph(st)}</text>` +
            `<text class="gnode-label" x="${NODE_H + 8}" y="${NODE_H / 2 + 4}">` +
            `${esc(short(n.id))}${n.mapped ? ' [ ]' : ''}</text>${kind}</a>`);
    }

    const svgMarkup =
        `<svg xmlns="http://www.w3.org/2000/svg"` +
        ` class="graph-svg${nodes.length > 500 ? ' graph-big' : ''}"` +
        ` data-testid="graph" role="group"` +
        ` aria-label="Task graph of ${esc(graph.dag_id || '')}: ${nodes.length} tasks"` +
        ` viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">` +
        `<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7"` +
        ` markerHeight="7" orient="auto"><path class="garrow" d="M0 0L8 4L0 8z"/></marker></defs>` +
        `<g class="gedges">${edgeParts.join('')}</g>` +
        `<g class="gnodes">${nodeParts.join('')}</g></svg>`;

    const box = h('div', {class: 'graph-scroll'});
    box.innerHTML = svgMarkup;
    const svg = box.firstChild;

    const nodeEl = new Map();
    for (const el of svg.querySelectorAll('.gnode')) nodeEl.set(el.getAttribute('data-task'), el);
    const nodeInfo = new Map(nodes.map((n) => [n.id, n]));

    /* edge highlight around the focused / hovered node (per-edge mode only) */
    if (split) {
        const touching = new Map();
        for (const el of svg.querySelectorAll('.gedge')) {
            for (const k of [el.getAttribute('data-from'), el.getAttribute('data-to')]) {
                if (!touching.has(k)) touching.set(k, []);
                touching.get(k).push(el);
            }
        }
        const hl = (ev, on) => {
            const a = ev.target.closest && ev.target.closest('.gnode');
            if (!a) return;
            for (const e of touching.get(a.getAttribute('data-task')) || [])
                e.classList.toggle('gedge-hl', on);
        };
        svg.addEventListener('mouseover', (ev) => hl(ev, true));
        svg.addEventListener('mouseout', (ev) => hl(ev, false));
        svg.addEventListener('focusin', (ev) => hl(ev, true));
        svg.addEventListener('focusout', (ev) => hl(ev, false));
    }
    /* tooltips are made on first hover (2,000 <title>s up front cost render time) */
    svg.addEventListener('mouseover', (ev) => {
        const a = ev.target.closest && ev.target.closest('.gnode');
        if (!a || a.querySelector('title')) return;
        const tip = document.createElementNS('http://www.w3.org/2000/svg', 'title');
        tip.textContent = a.getAttribute('aria-label') +
                          (nodeInfo.get(a.getAttribute('data-task')).mapped ? ' (mapped)' : '');
        a.insertBefore(tip, a.firstChild);
    });

    /* nodes without a link still answer Enter (e.g. to pick a run) */
    svg.addEventListener('keydown', (ev) => {
        if (ev.key !== 'Enter' && ev.key !== ' ') return;
        const a = ev.target.closest && ev.target.closest('.gnode');
        if (a && !a.hasAttribute('href') && opts.onNode) {
            ev.preventDefault();
            opts.onNode(a.getAttribute('data-task'));
        }
    });

    /* ---- zoom and pan ---- */
    let zoom = 1;
    function setZoom(z) {
        zoom = Math.min(2, Math.max(0.1, z));
        svg.setAttribute('width', Math.round(W * zoom));
        svg.setAttribute('height', Math.round(H * zoom));
        /* text under ~5 px is unreadable: not drawing it makes huge graphs much cheaper */
        svg.classList.toggle('graph-far', zoom < FAR_ZOOM);
        zoomLabel.textContent = Math.round(zoom * 100) + '%';
    }
    function zoomFit() {
        const cw = box.clientWidth || 1000;
        setZoom(Math.min(1, Math.max(0.2, (cw - 4) / W)));
    }
    const zoomLabel = h('span', {class: 'zoom-label', 'aria-live': 'polite'}, '100%');
    const tools = h('div', {class: 'graph-tools', role: 'toolbar', 'aria-label': 'Graph zoom'},
                    h('button', {type: 'button', class: 'btn btn-small', 'aria-label': 'Zoom out',
                                 onclick: () => setZoom(zoom / 1.25)}, '−'),
                    zoomLabel,
                    h('button', {type: 'button', class: 'btn btn-small', 'aria-label': 'Zoom in',
                                 onclick: () => setZoom(zoom * 1.25)}, '+'),
                    h('button', {type: 'button', class: 'btn btn-small', onclick: zoomFit}, 'Fit'),
                    h('button', {type: 'button', class: 'btn btn-small', onclick: () => setZoom(1)},
                      '100%'),
                    h('span', {class: 'muted small'},
                      `${nodes.length} tasks · ${edges.length} edges · ${layers} layers`));

    /* Ctrl + wheel zooms around the pointer; a plain wheel scrolls as usual */
    box.addEventListener('wheel', (ev) => {
        if (!ev.ctrlKey) return;
        ev.preventDefault();
        const r = box.getBoundingClientRect();
        const px = ev.clientX - r.left, py = ev.clientY - r.top;
        const gx = (box.scrollLeft + px) / zoom, gy = (box.scrollTop + py) / zoom;
        setZoom(zoom * (ev.deltaY < 0 ? 1.15 : 1 / 1.15));
        box.scrollLeft = gx * zoom - px;
        box.scrollTop = gy * zoom - py;
    }, {passive: false});

    /* drag the background to pan; the window listeners live only during a drag */
    let drag = null;
    const onMove = (ev) => {
        box.scrollLeft = drag.l - (ev.clientX - drag.x);
        box.scrollTop = drag.t - (ev.clientY - drag.y);
    };
    const onUp = () => {
        drag = null;
        box.classList.remove('dragging');
        window.removeEventListener('pointermove', onMove);
        window.removeEventListener('pointerup', onUp);
    };
    box.addEventListener('pointerdown', (ev) => {
        if (ev.button !== 0 || (ev.target.closest && ev.target.closest('.gnode'))) return;
        drag = {x: ev.clientX, y: ev.clientY, l: box.scrollLeft, t: box.scrollTop};
        box.classList.add('dragging');
        window.addEventListener('pointermove', onMove);
        window.addEventListener('pointerup', onUp);
    });

    const el = h('div', {class: 'graph-wrap'}, tools, box);

    /* Sets every node's state: states is a Map task -> state (missing = none). */
    function setStates(states) {
        for (const [id, a] of nodeEl) paint(id, a, states.get(id));
    }

    /* Changes only the given nodes. */
    function update(states) {
        for (const [id, st] of states) {
            const a = nodeEl.get(id);
            if (a) paint(id, a, st);
        }
    }

    function paint(id, a, state) {
        const st = norm(state);
        if (a.getAttribute('data-state') === st) return;
        a.setAttribute('data-state', st);
        a.querySelector('.gnode-glyph').textContent = glyph(st);
        const text = `${id}: ${label(st)}`;
        a.setAttribute('aria-label', text);
        const tip = a.querySelector('title');
        if (tip) tip.textContent = text;
    }

    /* Shows how many instances each mapped task has in the selected run ("[8]"). */
    function setCounts(counts) {
        for (const [id, a] of nodeEl) {
            if (!nodeInfo.get(id).mapped) continue;
            const n = counts.get(id);
            const text = `${short(id)} [${n === undefined ? ' ' : n}]`;
            const t = a.querySelector('.gnode-label');
            if (t.textContent !== text) t.textContent = text;
        }
    }

    /* Re-points the node links (after the selected run changed). */
    function setHrefs() {
        for (const [id, a] of nodeEl) {
            const href = opts.href ? opts.href(id, nodeInfo.get(id)) : null;
            if (href) {
                if (a.getAttribute('href') === href) continue;
                a.setAttribute('href', href);
                a.removeAttribute('tabindex');
            } else if (a.hasAttribute('href')) {
                a.removeAttribute('href');
                a.setAttribute('tabindex', '0');
            }
        }
    }

    return {el, svg, setStates, update, setCounts, setHrefs, zoomFit, setZoom, size: {W, H}};
}

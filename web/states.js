/*
 * states.js - how each run / task-instance state looks: colour, glyph, label.
 *
 * Key idea: colour is never the only signal. Every state has a distinct glyph
 * and a text label, and the colours come from the Okabe-Ito palette, which
 * stays distinguishable for the common kinds of colour blindness. The actual
 * colours live in style.css (classes st-STATE and [data-state=STATE]); this
 * file holds the glyphs, labels and the "how bad is it" order used to
 * aggregate the instances of a mapped task into one state.
 */

export const STATES = {
    none:            {glyph: '·', label: 'no status'},
    scheduled:       {glyph: '◷', label: 'scheduled'},
    queued:          {glyph: '○', label: 'queued'},
    running:         {glyph: '◔', label: 'running'},
    success:         {glyph: '✓', label: 'success'},
    failed:          {glyph: '✗', label: 'failed'},
    upstream_failed: {glyph: '⇡', label: 'upstream failed'},
    up_for_retry:    {glyph: '↻', label: 'up for retry'},
    skipped:         {glyph: '»', label: 'skipped'},
    cancelled:       {glyph: '⊘', label: 'cancelled'},
};

/* States in which nothing more happens (for runs and task instances). */
const ENDED = new Set(['success', 'failed', 'upstream_failed', 'skipped', 'cancelled']);

/* Worst first: the state a mapped task shows for all its instances. */
const SEVERITY = ['failed', 'upstream_failed', 'up_for_retry', 'running', 'queued', 'scheduled',
                  'cancelled', 'none', 'skipped', 'success'];

export function norm(state) {
    return state && STATES[state] ? state : 'none';
}

export function glyph(state) {
    return STATES[norm(state)].glyph;
}

export function label(state) {
    return STATES[norm(state)].label;
}

export function isEnded(state) {
    return ENDED.has(state);
}

/* The worse of two states (by SEVERITY); a missing state counts as none. */
export function worst(a, b) {
    if (a === undefined) return norm(b);
    const ia = SEVERITY.indexOf(norm(a)), ib = SEVERITY.indexOf(norm(b));
    return ia <= ib ? norm(a) : norm(b);
}

/* The order the legend shows. */
export const LEGEND_ORDER = ['success', 'running', 'failed', 'upstream_failed', 'up_for_retry',
                             'queued', 'scheduled', 'skipped', 'cancelled', 'none'];

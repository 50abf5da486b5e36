/*
 * diff.js - a line diff of two texts (the Code tab's comparison of two DAG
 * versions): the common prefix and suffix are cut off, the middle is an LCS
 * by dynamic programming (DAG files are small; a middle of more than
 * MAX_CELLS line pairs is shown as all removed then all added rather than
 * spending seconds). Pure: no DOM.
 */

const MAX_CELLS = 4e6;

/* [{kind: 'same'|'del'|'add', text, a, b}]: a and b are the 1-based line numbers in the old
   and new text (0 where the line is not in that text). */
export function lineDiff(oldText, newText) {
    const a = split(oldText), b = split(newText);
    let pre = 0;
    while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
    let suf = 0;
    while (suf < a.length - pre && suf < b.length - pre &&
           a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
    const out = [];
    for (let i = 0; i < pre; i++) out.push({kind: 'same', text: a[i], a: i + 1, b: i + 1});
    middle(a, b, pre, a.length - suf, pre, b.length - suf, out);
    for (let k = suf; k > 0; k--) {
        const i = a.length - k, j = b.length - k;
        out.push({kind: 'same', text: a[i], a: i + 1, b: j + 1});
    }
    return out;
}

function split(t) {
    if (!t) return [];
    const lines = t.split('\n');
    if (lines[lines.length - 1] === '') lines.pop(); /* the final newline ends a line */
    return lines;
}

/* The diff of a[a0..a1) and b[b0..b1), appended to out. */
function middle(a, b, a0, a1, b0, b1, out) {
    const n = a1 - a0, m = b1 - b0;
    const del = (i) => out.push({kind: 'del', text: a[i], a: i + 1, b: 0});
    const add = (j) => out.push({kind: 'add', text: b[j], a: 0, b: j + 1});
    if (!n || !m || n * m > MAX_CELLS) {
        for (let i = a0; i < a1; i++) del(i);
        for (let j = b0; j < b1; j++) add(j);
        return;
    }
    /* len[i][j]: the LCS of a[a0+i..a1) and b[b0+j..b1), one flat array */
    const w = m + 1;
    const len = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--)
        for (let j = m - 1; j >= 0; j--)
            len[i * w + j] = a[a0 + i] === b[b0 + j] ? len[(i + 1) * w + j + 1] + 1
                : Math.max(len[(i + 1) * w + j], len[i * w + j + 1]);
    let i = 0, j = 0;
    while (i < n && j < m) {
        if (a[a0 + i] === b[b0 + j]) {
            out.push({kind: 'same', text: a[a0 + i], a: a0 + i + 1, b: b0 + j + 1});
            i++, j++;
        } else if (len[(i + 1) * w + j] >= len[i * w + j + 1]) {
            del(a0 + i++);
        } else {
            add(b0 + j++);
        }
    }
    for (; i < n; i++) del(a0 + i);
    for (; j < m; j++) add(b0 + j);
}

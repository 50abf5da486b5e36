'use strict';
/*
 * dags.js - the small DAG files the browser tests write into a Baram's DAG folder.
 *
 * Key idea: where a test must see a state while it lasts ("running", a log that
 * is still growing), the task waits for a gate file that the test creates once
 * it has seen that state in the page, so no timing on a slow machine can make
 * the test miss it. A gate wait is bounded (~30 s), so a failed test never
 * leaves a task behind for long.
 */

/* sh that waits (at most ~30 s) for the file gate to exist. */
function waitFor(gate) {
    return `i=0; while [ ! -e '${gate}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`;
}

const KNOWN_LINE = 'extract says hello from baram 42';

/*
 * flow: 4 tasks, extract -> transform -> load, extract -> report. transform waits for the
 * gate "flow" then sleeps 0.3 s. A schedule starting in 2030, so no scheduled run appears.
 */
function flow(b) {
    return `dag: flow
description: Extract, transform and load the test orders
schedule: "0 3 * * *"
start: 2030-01-01
params:
  who: nobody
tasks:
  extract:
    run: echo "${KNOWN_LINE}"
  transform:
    needs: [extract]
    run: |
      ${waitFor(b.gate('flow'))}
      sleep 0.3
      echo "transformed for $PARAM_WHO"
  load:
    needs: [transform]
    run: echo loaded
  report:
    needs: [extract]
    run: echo reported
`;
}

/* flaky: prepare -> flaky -> after; flaky fails its first try (exit 3), later tries pass. */
function flaky(b) {
    const mark = b.gate('flaky-tried');
    return `dag: flaky
description: A task that fails once, then works
tasks:
  prepare:
    run: echo prepared
  flaky:
    needs: [prepare]
    run: |
      if [ -e '${mark}' ]; then echo "second try works"; else : > '${mark}'; echo "first try fails"; exit 3; fi
  after:
    needs: [flaky]
    run: echo after
`;
}

/* retried: flaky's failing first try, with a retry after 1 s: one run, flaky's two tries. */
function retried(b) {
    const mark = b.gate('retried-tried');
    return `dag: retried
description: A task that fails once and is retried
tasks:
  flaky:
    retries: 1
    retry_delay: 1s
    run: |
      if [ -e '${mark}' ]; then sleep 0.2; echo "second try works"; else : > '${mark}'; sleep 0.2; exit 3; fi
  after:
    needs: [flaky]
    run: echo after
`;
}

/* manyRetried: 120 mapped instances, each failing its first try and passing its retry. */
function manyRetried(b) {
    const dir = b.gate('many-tried');
    return `dag: many_retried
description: Many instances retried once
tasks:
  each:
    for_each: [${Array.from({ length: 120 }, (_, i) => i).join(', ')}]
    retries: 1
    retry_delay: 0s
    run: |
      mkdir -p '${dir}'; if [ -e '${dir}/{{ item }}' ]; then echo ok; else : > '${dir}/{{ item }}'; exit 3; fi
`;
}

/* branchy: task `fails` fails its first try (later ones work); `slow` waits for gate "branchy". */
function branchy(b) {
    const mark = b.gate('branchy-tried');
    return `dag: branchy
description: One branch fails while another still runs
tasks:
  fails:
    run: |
      if [ -e '${mark}' ]; then echo "works now"; else : > '${mark}'; exit 4; fi
  slow:
    run: |
      ${waitFor(b.gate('branchy'))}
      echo slow done
`;
}

/* failing: one task that always fails, one that never runs (upstream_failed). */
const failing = `dag: failing
description: Always fails
tasks:
  boom:
    run: echo "about to fail"; exit 7
  never:
    needs: [boom]
    run: echo never
`;

/* tail: say prints a known line; stream prints tail-line-01, waits for gate "tail", then 7 more lines over ~2.8 s. */
function tail(b) {
    return `dag: tail
description: Prints lines slowly, to watch the log tail live
tasks:
  say:
    run: echo "${KNOWN_LINE}"
  stream:
    needs: [say]
    run: |
      echo tail-line-01
      ${waitFor(b.gate('tail'))}
      for i in 02 03 04 05 06 07 08; do echo "tail-line-$i"; sleep 0.4; done
`;
}

/* picker: check passes with the default param ok=yes and fails with conf {"ok": "no"}; each is
   a mapped task of three instances. Four runs at once, so that many runs end quickly. */
const picker = `dag: picker
description: Runs that differ by their conf
max_active_runs: 4
params:
  ok: "yes"
tasks:
  check:
    run: test "$PARAM_OK" = yes
  each:
    for_each: [0, 1, 2]
    run: echo "{{ item }}"
`;

/* broken: an unknown key 'neds' on line 7 (an import error); BROKEN_LINE is that line. */
const BROKEN_LINE = 7;
const broken = `dag: broken_one
description: has a typo
tasks:
  a:
    run: echo a
  b:
    neds: [a]
    run: echo b
`;

/* big: layers x width tasks, each needing two tasks of the layer before; run: 'true'. */
function big(layers = 40, width = 50) {
    const out = ['dag: big', `description: ${layers * width} tasks in ${layers} layers`, 'tasks:'];
    const id = (l, w) => `t${String(l).padStart(2, '0')}_${String(w).padStart(2, '0')}`;
    for (let l = 0; l < layers; l++) {
        for (let w = 0; w < width; w++) {
            out.push(`  ${id(l, w)}:`);
            if (l > 0) {
                const needs = [...new Set([id(l - 1, w), id(l - 1, (w + 1) % width)])];
                out.push(`    needs: [${needs.join(', ')}]`);
            }
            out.push("    run: 'true'");
        }
    }
    return `${out.join('\n')}\n`;
}

module.exports = { BROKEN_LINE, KNOWN_LINE, big, branchy, broken, failing, flaky, flow, manyRetried, picker, retried,
    tail };

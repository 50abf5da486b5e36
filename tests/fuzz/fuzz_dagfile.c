/*
 * fuzz_dagfile.c - libFuzzer target for the DAG file parser and checker:
 * any bytes go through dag_load_mem (libyaml events -> AST -> checks ->
 * templates -> graph), and everything is freed, so the sanitizers catch
 * crashes, overflows, undefined behaviour and leaks on the error paths too.
 * Seeds: tests/fuzz/corpus/dagfile/. Single-threaded.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/diag.h"
#include "dag/dag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_mem((const char *)data, size, "fuzz.yaml", &d);
    if (dag) {
        /* Touch what consumers read, so a half-built dag would show. */
        for (uint32_t i = 0; i < dag->ntasks; i++) {
            uint32_t k;
            if (!dag_find(dag, dag->tasks[i].name, &k) || k != i)
                __builtin_trap();
            if (dag->level[i] >= dag->nlevels || dag->component[i] >= dag->ncomponents)
                __builtin_trap();
        }
    }
    /* Formatting every diagnostic exercises the printer with whatever the input held. */
    FILE *null = fopen("/dev/null", "we");
    if (null) {
        diag_print(&d, null, 1);
        fclose(null);
    }
    dag_free(dag);
    diag_release(&d);
    return 0;
}

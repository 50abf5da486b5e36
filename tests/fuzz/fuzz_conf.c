/*
 * fuzz_conf.c - libFuzzer target for params_conf_parse(), the reader of the conf
 * JSON that `dags trigger --conf` and queued runs carry into the daemon. Any
 * input either parses into params or fails with a message; what parses is
 * checked against a DAG's params, written back with params_conf_json() and
 * parsed again to the same params (names and values), so the round trip the
 * store makes is lossless.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/diag.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "sched/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dag *fuzz_dag(void)
{
    static struct dag *dag;
    if (!dag) {
        static const char y[] = "dag: f\nparams: {region: eu, limit: 100, who: null}\n"
                                "tasks:\n  t: {run: 'echo {{ params.region }}'}\n";
        struct diag d;
        diag_init(&d);
        dag = dag_load_mem(y, sizeof(y) - 1, "f.yaml", &d);
        diag_release(&d);
        if (!dag)
            abort();
    }
    return dag;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    memcpy(json, data, size);
    json[size] = 0;
    struct params_override *p = NULL;
    size_t n = 0;
    char *err = NULL;
    if (params_conf_parse(json, &p, &n, &err) < 0) {
        if (!err || !*err)
            abort();
        free(err);
        free(json);
        return 0;
    }
    struct diag d;
    diag_init(&d);
    if (params_check(fuzz_dag(), p, n, &d) < 0 && d.n == 0)
        abort(); /* a refusal always says why */
    diag_release(&d);
    char *again = params_conf_json(NULL, p, n);
    struct params_override *q = NULL;
    size_t m = 0;
    if (again) {
        if (params_conf_parse(again, &q, &m, &err) < 0)
            abort();
        /* names are unique in both; compare as sets */
        if (m != n)
            abort();
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            while (k < m && strcmp(p[i].name, q[k].name) != 0)
                k++;
            if (k == m || strcmp(p[i].value, q[k].value) != 0)
                abort();
        }
    } else if (n != 0) {
        abort();
    }
    params_conf_free(q, m);
    free(again);
    params_conf_free(p, n);
    free(json);
    return 0;
}

/*
 * versions.c - a DAG's versions as JSON (versions.h), shared by the CLI and
 * the API.
 */
#include "ops/versions.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/suggest.h"
#include "base/xalloc.h"
#include "ops/runjson.h"
#include "store/store.h"
#include "store/versions.h"

#define VERSION_HASH_MAX 128

bool ops_version_hash_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > VERSION_HASH_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

#define SUGGEST_RUNS 200 /* newest runs whose DAGs are suggested too (DAGs only run by `run`) */

/* -ENOENT with e saying there is no DAG dag_id, with a did-you-mean among the store's DAGs
 * and the DAGs of its newest runs. */
static int versions_no_dag(struct store *s, const char *dag_id, struct err *e)
{
    struct dag_rec *dags = NULL;
    struct run_rec *runs = NULL;
    size_t n = 0, nruns = 0;
    if (store_list_dags(s, &dags, &n, NULL) < 0)
        n = 0;
    if (store_list_runs(s, NULL, SUGGEST_RUNS, 0, &runs, &nruns, NULL, NULL) < 0)
        nruns = 0;
    const char **names = xcalloc(n + nruns + 1, sizeof(*names));
    for (size_t i = 0; i < n; i++)
        names[i] = dags[i].dag_id;
    for (size_t i = 0; i < nruns; i++)
        names[n + i] = runs[i].dag_id ? runs[i].dag_id : "";
    const char *near = suggest_closest(dag_id, names, n + nruns);
    int r = near ? err_set(e, -ENOENT, "no DAG '%s' (did you mean '%s'?)", dag_id, near)
                 : err_set(e, -ENOENT, "no DAG '%s'", dag_id);
    free(names);
    store_free_dags(dags, n);
    store_free_runs(runs, nruns);
    return r;
}

int ops_dag_versions(struct store *s, const char *dag_id, json_t **out, struct err *e)
{
    *out = NULL;
    struct dag_version_rec *v = NULL;
    size_t n = 0;
    int r = store_list_dag_versions(s, dag_id, &v, &n, e);
    if (r < 0)
        return r;
    struct dag_rec d = {0};
    int dr = store_get_dag(s, dag_id, &d, e);
    if (dr < 0 && dr != -ENOENT) {
        store_free_dag_versions(v, n);
        return dr;
    }
    if (dr == -ENOENT && n == 0)
        return versions_no_dag(s, dag_id, e);
    const char *cur = dr == 0 ? d.hash : NULL;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "hash", json_string(v[i].hash));
        json_object_set_new(o, "current", json_boolean(cur && strcmp(cur, v[i].hash) == 0));
        json_object_set_new(o, "created_at", runjson_time(v[i].created_at_ms));
        json_object_set_new(o, "first_run_at", runjson_time(v[i].first_run_ms));
        json_object_set_new(o, "runs", json_integer(v[i].runs));
        json_array_append_new(arr, o);
    }
    *out = json_pack("{s:s, s:o, s:o}", "dag_id", dag_id, "current",
                     cur ? json_string(cur) : json_null(), "versions", arr);
    dag_rec_release(&d);
    store_free_dag_versions(v, n);
    return 0;
}

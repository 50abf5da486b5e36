/*
 * cmd_dags.c - `baram dags SUBCOMMAND` (SPEC section 3). Today: `validate
 * PATH...`, which loads each DAG file through dag_load_file (a folder: every
 * *.yaml and *.yml directly in it, in name order) and prints every
 * diagnostic GCC-style on stderr and "FILE: ok (N tasks)" on stdout, or one
 * JSON array with --json. Within one folder, two files may not share a dag
 * id. Exit 0 all valid, 1 some file invalid, 2 usage error or a path that
 * cannot be read. Main thread; everything allocated here is freed here.
 */
#include "cli/cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/diag.h"
#include "base/suggest.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "dag/dag.h"

static const char usage_dags[] = "usage: baram dags SUBCOMMAND [ARGS]\n"
                                 "\n"
                                 "subcommands:\n"
                                 "  validate PATH... [--json]   check DAG files (a folder: its "
                                 "*.yaml and *.yml files)\n";

static const char usage_validate[] =
    "usage: baram dags validate PATH... [--json] [--debug]\n"
    "\n"
    "Checks DAG files without running them. A folder stands for every *.yaml and\n"
    "*.yml file directly in it. Problems go to stderr as FILE:LINE:COL: error: MESSAGE,\n"
    "good files to stdout as 'FILE: ok (N tasks)'.\n"
    "\n"
    "  --json    print [{\"file\",\"dag\",\"tasks\",\"errors\":[{\"line\",\"col\",\"message\"}]}]\n"
    "  --debug   show where in baram each diagnostic was made\n"
    "\n"
    "exit: 0 all valid, 1 some file has errors, 2 usage error or unreadable path\n";

struct vstate {
    bool json, debug;
    json_t *arr; /* owned, --json only */
    int rc;
};

struct seen_id {
    char *id;   /* owned */
    char *file; /* owned */
};

static bool has_yaml_ext(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Validates one file; seen (may be NULL) collects ids to catch duplicates within a folder. */
static void validate_file(struct vstate *st, const char *path, struct seen_id **seen, size_t *nseen)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_file(path, &d);
    if (dag && seen) {
        for (size_t i = 0; i < *nseen; i++)
            if (strcmp((*seen)[i].id, dag->id) == 0) {
                diag_err(&d, path, 0, 0, "dag id '%s' is also used by '%s'", dag->id,
                         (*seen)[i].file);
                break;
            }
        if (d.errors == 0) {
            *seen = xrealloc(*seen, (*nseen + 1) * sizeof **seen);
            (*seen)[*nseen].id = xstrdup(dag->id);
            (*seen)[*nseen].file = xstrdup(path);
            (*nseen)++;
        }
    }
    bool ok = dag && d.errors == 0;
    if (!ok && st->rc == EXIT_OK)
        st->rc = EXIT_FAILED;
    if (st->json) {
        json_t *errs = json_array();
        for (size_t i = 0; i < d.n; i++) {
            const struct diag_entry *e = &d.v[i];
            json_t *o = json_pack("{s:i, s:i, s:s}", "line", e->line, "col", e->line ? e->col : 0,
                                  "message", e->msg);
            if (o && e->hint)
                json_object_set_new(o, "hint", json_string(e->hint));
            if (o)
                json_array_append_new(errs, o);
        }
        json_t *o = json_object();
        json_object_set_new(o, "file", json_string(path));
        json_object_set_new(o, "dag", ok ? json_string(dag->id) : json_null());
        json_object_set_new(o, "tasks", ok ? json_integer(dag->ntasks) : json_null());
        json_object_set_new(o, "errors", errs);
        json_array_append_new(st->arr, o);
    } else {
        diag_print(&d, stderr, st->debug);
        if (ok)
            printf("%s: ok (%u tasks)\n", path, dag->ntasks);
    }
    dag_free(dag);
    diag_release(&d);
}

static void validate_dir(struct vstate *st, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "baram dags validate: cannot read folder '%s': %s\n", dir, strerror(errno));
        st->rc = EXIT_USAGE;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || !has_yaml_ext(de->d_name))
            continue;
        xgrow((void **)&names, &cap, n + 1, sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(dp);
    qsort(names, n, sizeof *names, cmp_str);
    struct seen_id *seen = NULL;
    size_t nseen = 0;
    size_t dl = strlen(dir);
    for (size_t i = 0; i < n; i++) {
        struct buf p = BUF_INIT(BUF_NO_MAX);
        int r = buf_addf(&p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", names[i]);
        struct stat sb;
        if (r == 0 && stat(p.data, &sb) == 0 && S_ISREG(sb.st_mode))
            validate_file(st, p.data, &seen, &nseen);
        buf_release(&p);
        free(names[i]);
    }
    for (size_t i = 0; i < nseen; i++) {
        free(seen[i].id);
        free(seen[i].file);
    }
    free(seen);
    free(names);
}

static int dags_validate(int argc, char **argv)
{
    struct vstate st = {.rc = EXIT_OK};
    const char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    size_t npos = 0;
    const char *home = NULL; /* global flag, accepted everywhere; validating needs no home */
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &st.json, NULL, NULL},
        {"debug", ARGS_BOOL, &st.debug, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home, NULL},
    };
    int r =
        args_parse("dags validate", argc, argv, flags, ARRAY_SIZE(flags), pos, (size_t)argc, &npos);
    if (r == ARGS_HELP) {
        fputs(usage_validate, stdout);
        free(pos);
        return EXIT_OK;
    }
    if (r < 0 || npos == 0) {
        if (r == 0)
            fputs("baram dags validate: no PATH given\n", stderr);
        fputs(usage_validate, stderr);
        free(pos);
        return EXIT_USAGE;
    }
    if (st.json)
        st.arr = json_array();
    int usage_rc = EXIT_OK;
    for (size_t i = 0; i < npos; i++) {
        struct stat sb;
        if (stat(pos[i], &sb) < 0) {
            fprintf(stderr, "baram dags validate: cannot open '%s': %s\n", pos[i], strerror(errno));
            usage_rc = EXIT_USAGE;
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            validate_dir(&st, pos[i]);
            continue;
        }
        int fd = open(pos[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "baram dags validate: cannot open '%s': %s\n", pos[i], strerror(errno));
            usage_rc = EXIT_USAGE;
            continue;
        }
        close(fd);
        validate_file(&st, pos[i], NULL, NULL);
    }
    if (st.json) {
        char *s = json_dumps(st.arr, JSON_COMPACT);
        if (s) {
            puts(s);
            free(s);
        }
        json_decref(st.arr);
    }
    free(pos);
    fflush(stdout);
    if (usage_rc != EXIT_OK || st.rc == EXIT_USAGE)
        return EXIT_USAGE;
    return st.rc;
}

int cmd_dags(int argc, char **argv)
{
    static const char *const subs[] = {"validate"};
    if (argc < 2) {
        fputs(usage_dags, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_dags, stdout);
        return EXIT_OK;
    }
    if (strcmp(sub, "validate") == 0)
        return dags_validate(argc - 1, argv + 1);
    const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
    if (near)
        fprintf(stderr, "baram dags: unknown subcommand '%s' (did you mean '%s'?)\n", sub, near);
    else
        fprintf(stderr, "baram dags: unknown subcommand '%s'; see 'baram dags --help'\n", sub);
    return EXIT_USAGE;
}

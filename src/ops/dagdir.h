/*
 * dagdir.h - the DAG folder: every *.yaml / *.yml file directly in it, each
 * loaded into a checked DAG or an import error (file, line, message).
 *
 * Two ways in:
 *  - dagdir_scan: one synchronous pass, for the CLI (`dags list`); `dags
 *    trigger` and the API's trigger first try dagdir_load on the one file the
 *    scheduler recorded for the DAG.
 *  - dagdir_open: the daemon's view. It scans, then watches the folder
 *    (inotify) and re-parses only the file that changed, as soon as it is
 *    complete: closed by its writer or renamed into place (an editor's save).
 *    A file written and still held open is re-parsed after DAGDIR_QUIET_MS
 *    without events (a removed one too); while its writer holds it, a file
 *    that fails to parse is taken as half written and is not reported until
 *    it is closed or DAGDIR_HELD_MS pass without a write. Each change is
 *    reported through one callback.
 *
 * Rules: hidden files and editor leftovers (".x.yaml", "x.yaml~", "#x#",
 * ".swp") are ignored; files are taken in name order; a DAG id already
 * defined by another file makes the later file an import error ("dag 'x' is
 * already defined in FILE"), and when that other file goes away or changes
 * its id, the files that failed on the duplicate are parsed again. A file
 * with errors has no DAG: its DAG stops being scheduled until it is fixed
 * (runs already going keep their own version, see dag_ref).
 *
 * Loop thread only (dagdir_open). DAGs are reference counted (dag.h): the
 * dagdir holds one reference on each current DAG; a callee that keeps one
 * past the callback takes its own with dag_ref.
 */
#ifndef BARAM_OPS_DAGDIR_H
#define BARAM_OPS_DAGDIR_H

#include <stddef.h>

#include "base/compiler.h"
#include "base/diag.h"

struct dag;
struct err;
struct uv_loop_s;

#define DAGDIR_QUIET_MS 100  /* the backstop after a write, a delete, a chmod */
#define DAGDIR_HELD_MS  2000 /* a failing file its writer holds open: reported after this */

struct dagdir_file {
    char *path;         /* owned: folder/name.yaml */
    struct dag *dag;    /* one reference owned, or NULL when the file failed */
    struct diag errors; /* its problems when dag == NULL */
};

/* Loads every DAG file of folder, in name order. 0 with *out (*n files; free with
 * dagdir_free_files), or a negative errno when the folder cannot be read, with *e saying so
 * for a person. A missing folder is an empty folder. */
int dagdir_scan(const char *folder, struct dagdir_file **out, size_t *n, struct err *e) WARN_UNUSED;
void dagdir_free_files(struct dagdir_file *v, size_t n);
/* Loads the one file at path: 0 with *out (one file; free with dagdir_free_files(*out, 1)), or
 * -ENOENT when it is gone or not a regular file. The other files of its folder
 * are not read, so a DAG id another file also defines is not noticed: for finding a DAG through
 * the path the scheduler recorded for it (ops.c), with dagdir_scan when that fails. Any thread. */
int dagdir_load(const char *path, struct dagdir_file **out) WARN_UNUSED;

/* notify: the notifiers of baram.yaml (names checked against the DAGs' `{notify: NAME}`
 * hooks). Until it is called nothing is checked (a DAG checked without a home); after, a hook
 * naming no notifier makes its file fail, in every load of this file (the daemon's, the CLI's).
 * v is copied. Call it once, before any thread loads DAGs (main thread). */
struct notifier;
void dagdir_set_notifiers(const struct notifier *v, size_t n);
/* Adds to d an error for every hook of dag naming a notifier that dagdir_set_notifiers did not
 * give (nothing when it was not called). The number of errors added. Any thread (after the set). */
size_t dagdir_check_notify(const struct dag *dag, struct diag *d);

/* A file changed. path: the file (borrowed). old: the DAG it had (NULL when none), now: its
 * DAG after the change (NULL when the file failed or was removed); both borrowed for the
 * call (dag_ref to keep one). errors: why the file failed (empty otherwise; borrowed). */
typedef void (*dagdir_change_fn)(void *ud, const char *path, const struct dag *old,
                                 const struct dag *now, const struct diag *errors);

struct dagdir;

/* Scans folder (reporting every file through cb, old NULL) and starts watching it. A missing
 * folder is created (0755). 0 and *out, or a negative code with *e filled. */
int dagdir_open(struct uv_loop_s *loop, const char *folder, dagdir_change_fn cb, void *ud,
                struct dagdir **out, struct err *e) WARN_UNUSED;
/* The current DAG with this id, or NULL (borrowed). */
const struct dag *dagdir_find(const struct dagdir *d, const char *dag_id);
/* Calls fn for every file, in name order: its current DAG (or NULL) and errors. */
void dagdir_each(const struct dagdir *d,
                 void (*fn)(void *ud, const char *path, const struct dag *dag,
                            const struct diag *errors),
                 void *ud);
/* Stops watching and frees everything once its handles are closed on the loop; done(ud)
 * (may be NULL) is then called. No callback is made after this call. */
void dagdir_close(struct dagdir *d, void (*done)(void *ud), void *ud);

#endif

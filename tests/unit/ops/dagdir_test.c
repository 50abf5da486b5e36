/*
 * dagdir_test.c - the DAG folder: the scan (order, filters, duplicates,
 * import errors, missing and unreadable folders, the file cap) and the
 * watcher on a real libuv loop and real files in a mkdtemp folder (add,
 * modify, same bytes, garbage, fix, rename-over save, delete, duplicate
 * resolution, 50 files at once, hostile files, the folder going away, close
 * with pending timers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "../exec/loopwait.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "ops/dagdir.h"

/* ---- files ---- */

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/dagdir-test-XXXXXX";
    char *p = mkdtemp(tmpl);
    assert_non_null(p);
    assert_int_equal(chmod(p, 0755), 0); /* as_nobody() must reach into it */
    return xstrdup(p);
}

static char *pathof(const char *dir, const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static void put(const char *dir, const char *name, const char *text)
{
    char *p = pathof(dir, name);
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    free(p);
}

/* Writes through a temporary file and a rename, as editors save. */
static void put_by_rename(const char *dir, const char *name, const char *text)
{
    char *tmp = xasprintf(".%s.tmp", name);
    put(dir, tmp, text);
    char *from = pathof(dir, tmp), *to = pathof(dir, name);
    assert_int_equal(rename(from, to), 0);
    free(from);
    free(to);
    free(tmp);
}

static void rm(const char *dir, const char *name)
{
    char *p = pathof(dir, name);
    assert_int_equal(unlink(p), 0);
    free(p);
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *p = pathof(dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static char *dag_text(const char *id, const char *cmd)
{
    return xasprintf("dag: %s\ntasks:\n  a:\n    run: %s\n", id, cmd);
}

static void put_dag(const char *dir, const char *name, const char *id, const char *cmd)
{
    char *t = dag_text(id, cmd);
    put(dir, name, t);
    free(t);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs fn in a child process as user nobody (when we are root, permissions do not bind us):
 * its exit code. */
static int as_nobody(int (*fn)(const char *dir), const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
            _exit(100);
        _exit(fn(dir));
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* ---- scan ---- */

static void scan_takes_dag_files_in_name_order(void **state)
{
    char *dir = tmpdir(), *out = tmpdir();
    put_dag(dir, "b.yaml", "b", "true");
    put_dag(dir, "a.yml", "a", "true");
    put_dag(dir, "c.yaml", "c", "true");
    put_dag(dir, ".hidden.yaml", "h1", "true");
    put_dag(dir, "x.yaml~", "h2", "true");
    put_dag(dir, "#y.yaml#", "h3", "true");
    put_dag(dir, ".y.yaml.swp", "h4", "true");
    put_dag(dir, "z.yaml.tmp", "h5", "true");
    put_dag(dir, "notes.txt", "h6", "true");
    put_dag(dir, "yaml", "h7", "true");
    put_dag(dir, ".yaml", "h8", "true");
    char *p = pathof(dir, "d.yaml");
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = pathof(dir, "f.yaml");
    assert_int_equal(mkfifo(p, 0644), 0); /* must not block the scan */
    free(p);
    put_dag(out, "target.yaml", "s", "true");
    p = pathof(dir, "s.yaml");
    char *target = pathof(out, "target.yaml");
    assert_int_equal(symlink(target, p), 0);
    free(p);
    free(target);
    p = pathof(dir, "dangling.yaml");
    assert_int_equal(symlink("/nonexistent/x.yaml", p), 0);
    free(p);

    struct dagdir_file *v;
    size_t n;
    struct err derr = {0};
    assert_int_equal(dagdir_scan(dir, &v, &n, &derr), 0);
    assert_int_equal(derr.code, 0);
    assert_int_equal(n, 4);
    const char *want[] = {"a.yml", "b.yaml", "c.yaml", "s.yaml"};
    const char *ids[] = {"a", "b", "c", "s"};
    for (size_t i = 0; i < n; i++) {
        char *w = pathof(dir, want[i]);
        assert_string_equal(v[i].path, w);
        free(w);
        assert_non_null(v[i].dag);
        assert_string_equal(v[i].dag->id, ids[i]);
        assert_int_equal(v[i].errors.n, 0);
    }
    dagdir_free_files(v, n);

    /* a trailing slash on the folder gives the same paths */
    char *slashed = xasprintf("%s/", dir);
    assert_int_equal(dagdir_scan(slashed, &v, &n, &derr), 0);
    assert_int_equal(n, 4);
    char *w = pathof(dir, "a.yml");
    assert_string_equal(v[0].path, w);
    free(w);
    dagdir_free_files(v, n);
    free(slashed);
    rm_rf(dir);
    rm_rf(out);
    free(dir);
    free(out);
}

static void scan_refuses_a_duplicate_id_at_its_dag_line(void **state)
{
    char *dir = tmpdir();
    put_dag(dir, "a.yaml", "x", "true");
    put(dir, "b.yaml", "# the same id\n\ndag: x\ntasks:\n  t:\n    run: true\n");
    put_dag(dir, "c.yaml", "y", "true");
    put(dir, "d.yaml", "description: no dag key first\n\"dag\": y\ntasks:\n  t:\n    run: true\n");
    struct dagdir_file *v;
    size_t n;
    struct err derr = {0};
    assert_int_equal(dagdir_scan(dir, &v, &n, &derr), 0);
    assert_int_equal(n, 4);
    assert_non_null(v[0].dag);
    assert_null(v[1].dag);
    assert_int_equal(v[1].errors.n, 1);
    assert_int_equal(v[1].errors.v[0].line, 3);
    assert_string_equal(v[1].errors.v[0].file, v[1].path);
    char *msg = xasprintf("dag 'x' is already defined in %s/a.yaml", dir);
    assert_string_equal(v[1].errors.v[0].msg, msg);
    free(msg);
    assert_non_null(v[2].dag);
    assert_null(v[3].dag);
    assert_int_equal(v[3].errors.n, 1);
    assert_int_equal(v[3].errors.v[0].line, 2);
    dagdir_free_files(v, n);
    rm_rf(dir);
    free(dir);
}

static int scan_unreadable_file(const char *dir)
{
    struct dagdir_file *v;
    size_t n;
    struct err derr = {0};
    if (dagdir_scan(dir, &v, &n, &derr) != 0)
        return 1;
    int rc = 0;
    if (n != 2 || v[0].dag || v[0].errors.n != 1 || !strstr(v[0].errors.v[0].msg, "Permission"))
        rc = 2;
    if (!v[1].dag)
        rc = 3;
    dagdir_free_files(v, n);
    return rc;
}

static void scan_reports_import_errors_and_goes_on(void **state)
{
    char *dir = tmpdir();
    put(dir, "a-half.yaml", "dag: half\ntasks:\n  a:\n    run: [unclosed\n");
    put(dir, "b-binary.yaml", "\x01\x02\xff\xfe\x00garbage\x7f");
    put(dir, "c-empty.yaml", "");
    put(dir, "d-unknown.yaml", "dag: u\ntasks:\n  a:\n    run: true\n    retires: 2\n");
    put_dag(dir, "e-good.yaml", "good", "true");
    struct dagdir_file *v;
    size_t n;
    struct err derr = {0};
    assert_int_equal(dagdir_scan(dir, &v, &n, &derr), 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < 4; i++) {
        assert_null(v[i].dag);
        assert_true(v[i].errors.n >= 1);
        assert_true(v[i].errors.errors >= 1);
        assert_string_equal(v[i].errors.v[0].file, v[i].path);
    }
    assert_true(v[0].errors.v[0].line >= 4); /* where the flow sequence breaks */
    assert_int_equal(v[3].errors.v[0].line, 5);
    assert_non_null(strstr(v[3].errors.v[0].msg, "retires"));
    assert_non_null(v[4].dag);
    dagdir_free_files(v, n);

    /* an unreadable file is an import error, not a scan failure */
    char *sub = pathof(dir, "perm");
    assert_int_equal(mkdir(sub, 0755), 0);
    put_dag(sub, "a.yaml", "locked", "true");
    put_dag(sub, "b.yaml", "open", "true");
    char *locked = pathof(sub, "a.yaml");
    assert_int_equal(chmod(locked, 0), 0);
    assert_int_equal(as_nobody(scan_unreadable_file, sub), 0);
    free(locked);
    free(sub);
    rm_rf(dir);
    free(dir);
}

static int scan_expect_eacces(const char *dir)
{
    struct dagdir_file *v;
    size_t n;
    struct err derr = {0};
    int r = dagdir_scan(dir, &v, &n, &derr);
    int rc = r == -EACCES && strstr(derr.msg, dir) ? 0 : 1;
    return rc;
}

static void scan_of_missing_and_unreadable_folders(void **state)
{
    char *dir = tmpdir();
    struct dagdir_file *v;
    size_t n = 7;
    struct err derr = {0};
    char *missing = pathof(dir, "missing");
    assert_int_equal(dagdir_scan(missing, &v, &n, &derr), 0);
    assert_int_equal(n, 0);
    assert_int_equal(derr.code, 0);
    dagdir_free_files(v, n);

    put_dag(dir, "file.yaml", "f", "true");
    char *file = pathof(dir, "file.yaml");
    assert_int_equal(dagdir_scan(file, &v, &n, &derr), -ENOTDIR);
    assert_true(derr.msg[0] != 0);
    assert_non_null(strstr(derr.msg, file));

    char *locked = pathof(dir, "locked");
    assert_int_equal(mkdir(locked, 0700), 0);
    put_dag(locked, "a.yaml", "a", "true");
    assert_int_equal(chmod(locked, 0), 0);
    assert_int_equal(as_nobody(scan_expect_eacces, locked), 0);
    assert_int_equal(chmod(locked, 0700), 0);
    free(locked);
    free(file);
    free(missing);
    rm_rf(dir);
    free(dir);
}

static void scan_caps_the_number_of_files(void **state)
{
    char *dir = tmpdir();
    char name[32];
    for (int i = 0; i <= 10000; i++) {
        snprintf(name, sizeof(name), "f%05d.yaml", i);
        char *p = pathof(dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        free(p);
    }
    struct dagdir_file *v;
    size_t n;
    struct err derr = {0};
    assert_int_equal(dagdir_scan(dir, &v, &n, &derr), -E2BIG);
    assert_non_null(strstr(derr.msg, "10000"));
    rm(dir, "f00000.yaml"); /* 10000 files: allowed (each an import error: empty) */
    assert_int_equal(dagdir_scan(dir, &v, &n, &derr), 0);
    assert_int_equal(n, 10000);
    dagdir_free_files(v, n);
    rm_rf(dir);
    free(dir);
}

static void scan_of_100_files_is_quick(void **state)
{
    char *dir = tmpdir();
    char name[32], id[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "d%03d.yaml", i);
        snprintf(id, sizeof(id), "dag_%03d", i);
        put(dir, name,
            "dag: placeholder\n"); /* overwritten just below with a real DAG of 5 tasks */
        char *t = xasprintf("dag: %s\nschedule: \"0 3 * * *\"\nstart: 2026-01-01\ntasks:\n"
                            "  a:\n    run: echo {{ ds }}\n  b:\n    needs: [a]\n    run: true\n"
                            "  c:\n    needs: [a]\n    run: true\n  d:\n    needs: [b, c]\n"
                            "    run: true\n  e:\n    needs: [d]\n    retries: 2\n    run: true\n",
                            id);
        put(dir, name, t);
        free(t);
    }
    struct dagdir_file *v;
    size_t n;
    struct err derr = {0};
    int64_t t0 = now_ms();
    assert_int_equal(dagdir_scan(dir, &v, &n, &derr), 0);
    int64_t took = now_ms() - t0;
    assert_int_equal(n, 100);
    for (size_t i = 0; i < n; i++)
        assert_non_null(v[i].dag);
    print_message("scan of 100 DAG files (5 tasks each): %lld ms\n", (long long)took);
    dagdir_free_files(v, n);
    rm_rf(dir);
    free(dir);
}

/* ---- watcher ---- */

struct ev {
    char *path;
    bool had_old, has_now;
    char old_hash[65], now_hash[65];
    char *now_id;
    size_t nerrors;
    char *msg0;
};

struct rec {
    struct ev v[256];
    int n;
    struct dagdir *d;
    bool in_find; /* the DAG found by id inside the callback is the one reported */
};

static void on_change(void *ud, const char *path, const struct dag *old, const struct dag *now,
                      const struct diag *errors)
{
    struct rec *r = ud;
    assert_true(r->n < 256);
    struct ev *e = &r->v[r->n++];
    memset(e, 0, sizeof(*e));
    e->path = xstrdup(path);
    e->had_old = old != NULL;
    e->has_now = now != NULL;
    if (old)
        memcpy(e->old_hash, old->hash, 65);
    if (now) {
        memcpy(e->now_hash, now->hash, 65);
        e->now_id = xstrdup(now->id);
        if (r->d)
            assert_ptr_equal(dagdir_find(r->d, now->id), now);
        assert_string_equal(now->path, path);
    }
    e->nerrors = errors->n;
    if (errors->n)
        e->msg0 = xstrdup(errors->v[0].msg);
    if (now)
        assert_int_equal(errors->n, 0);
}

static void rec_clear(struct rec *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->v[i].path);
        free(r->v[i].now_id);
        free(r->v[i].msg0);
    }
    r->n = 0;
}

static bool ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void on_done(void *ud)
{
    (*(int *)ud)++;
}

static void close_dir(uv_loop_t *loop, struct dagdir *d)
{
    int done = 0;
    dagdir_close(d, on_done, &done);
    assert_true(loopwait_until(loop, &done, 1, 2000));
}

/* Waits for want callbacks (2 s at most), then 300 ms more to see that none follow. */
static void expect_events(uv_loop_t *loop, struct rec *r, int want)
{
    assert_true(loopwait_until(loop, &r->n, want, 2000));
    assert_false(loopwait_until(loop, &r->n, want + 1, 300));
    assert_int_equal(r->n, want);
}

struct count {
    int n;
};

static void count_each(void *ud, const char *path, const struct dag *dag, const struct diag *errors)
{
    ((struct count *)ud)->n++;
}

static void watcher_follows_edits(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *top = tmpdir();
    char *dir = xasprintf("%s/home/dags", top); /* missing: created */
    struct rec r = {0};
    struct dagdir *d;
    struct err derr = {0};
    assert_int_equal(dagdir_open(&loop, dir, on_change, &r, &d, &derr), 0);
    r.d = d;
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(r.n, 0);

    put_dag(dir, "keep.yaml", "keep", "true");
    expect_events(&loop, &r, 1);
    const struct dag *keep = dagdir_find(d, "keep");
    assert_non_null(keep);
    rec_clear(&r);

    /* add: reported within about a second */
    int64_t t0 = now_ms();
    put_dag(dir, "c.yaml", "c", "echo one");
    assert_true(loopwait_until(&loop, &r.n, 1, 1000));
    print_message("add -> callback: %lld ms\n", (long long)(now_ms() - t0));
    assert_false(r.v[0].had_old);
    assert_true(r.v[0].has_now);
    assert_string_equal(r.v[0].now_id, "c");
    assert_true(ends(r.v[0].path, "/c.yaml"));
    expect_events(&loop, &r, 1);
    char first[65];
    memcpy(first, r.v[0].now_hash, 65);
    rec_clear(&r);

    /* modify: old and now differ */
    put_dag(dir, "c.yaml", "c", "echo two");
    expect_events(&loop, &r, 1);
    assert_true(r.v[0].had_old && r.v[0].has_now);
    assert_string_equal(r.v[0].old_hash, first);
    assert_string_not_equal(r.v[0].now_hash, first);
    char second[65];
    memcpy(second, r.v[0].now_hash, 65);
    rec_clear(&r);

    /* the same bytes again, and a touch: nothing */
    put_dag(dir, "c.yaml", "c", "echo two");
    char *cpath = pathof(dir, "c.yaml");
    assert_int_equal(utimensat(AT_FDCWD, cpath, NULL, 0), 0);
    assert_false(loopwait_until(&loop, &r.n, 1, 500));
    assert_string_equal(dagdir_find(d, "c")->hash, second);

    /* garbage: the file fails, the other DAGs stay as they are */
    put(dir, "c.yaml", "dag: c\ntasks: [\x01\xff");
    expect_events(&loop, &r, 1);
    assert_true(r.v[0].had_old);
    assert_false(r.v[0].has_now);
    assert_true(r.v[0].nerrors >= 1);
    assert_null(dagdir_find(d, "c"));
    assert_ptr_equal(dagdir_find(d, "keep"), keep);
    struct count c = {0};
    dagdir_each(d, count_each, &c);
    assert_int_equal(c.n, 2);
    rec_clear(&r);

    /* fixed: the DAG is back */
    put_dag(dir, "c.yaml", "c", "echo three");
    expect_events(&loop, &r, 1);
    assert_false(r.v[0].had_old);
    assert_true(r.v[0].has_now);
    assert_non_null(dagdir_find(d, "c"));
    rec_clear(&r);

    /* an editor's save through a temporary file and a rename: one reload */
    put_by_rename(dir, "c.yaml", "dag: c\ntasks:\n  a:\n    run: echo four\n");
    expect_events(&loop, &r, 1);
    assert_true(r.v[0].had_old && r.v[0].has_now);
    rec_clear(&r);

    /* deleted and written again at once with the same bytes: nothing */
    rm(dir, "c.yaml");
    put(dir, "c.yaml", "dag: c\ntasks:\n  a:\n    run: echo four\n");
    assert_false(loopwait_until(&loop, &r.n, 1, 500));

    /* deleted: now NULL, no errors, forgotten */
    rm(dir, "c.yaml");
    expect_events(&loop, &r, 1);
    assert_true(r.v[0].had_old);
    assert_false(r.v[0].has_now);
    assert_int_equal(r.v[0].nerrors, 0);
    assert_null(dagdir_find(d, "c"));
    c.n = 0;
    dagdir_each(d, count_each, &c);
    assert_int_equal(c.n, 1);
    rec_clear(&r);

    /* a failing file that is deleted is reported too (its import error goes away) */
    put(dir, "bad.yaml", "nope");
    expect_events(&loop, &r, 1);
    assert_false(r.v[0].has_now);
    rm(dir, "bad.yaml");
    expect_events(&loop, &r, 2);
    assert_false(r.v[1].has_now);
    assert_int_equal(r.v[1].nerrors, 0);
    rec_clear(&r);

    close_dir(&loop, d);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(cpath);
    rm_rf(top);
    free(top);
    free(dir);
}

static void watcher_reports_existing_files_on_open(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = tmpdir();
    put_dag(dir, "a.yaml", "a", "true");
    put(dir, "b.yaml", "dag: b\ntasks: {}\nbogus: 1\n");
    put(dir, ".hidden.yaml", "x");
    struct rec r = {0};
    struct dagdir *d;
    struct err derr = {0};
    assert_int_equal(dagdir_open(&loop, dir, on_change, &r, &d, &derr), 0);
    assert_int_equal(r.n, 2);
    assert_true(ends(r.v[0].path, "/a.yaml") && r.v[0].has_now && !r.v[0].had_old);
    assert_true(ends(r.v[1].path, "/b.yaml") && !r.v[1].has_now && r.v[1].nerrors >= 1);
    assert_non_null(dagdir_find(d, "a"));
    assert_null(dagdir_find(d, "b"));
    assert_null(dagdir_find(d, "zzz"));
    close_dir(&loop, d);
    rec_clear(&r);

    /* an unreadable folder is refused, nothing to close */
    char *file = pathof(dir, "a.yaml");
    assert_true(dagdir_open(&loop, file, on_change, &r, &d, &derr) < 0);
    assert_true(derr.msg[0] != 0);
    free(file);
    assert_int_equal(uv_loop_close(&loop), 0);
    rm_rf(dir);
    free(dir);
}

static int find_ev(const struct rec *r, const char *suffix)
{
    for (int i = 0; i < r->n; i++)
        if (ends(r->v[i].path, suffix))
            return i;
    return -1;
}

static void watcher_resolves_duplicates(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = tmpdir();
    put_dag(dir, "a.yaml", "x", "true");
    put_dag(dir, "b.yaml", "x", "echo b");
    put_dag(dir, "c.yaml", "x", "echo c");
    struct rec r = {0};
    struct dagdir *d;
    struct err derr = {0};
    assert_int_equal(dagdir_open(&loop, dir, on_change, &r, &d, &derr), 0);
    r.d = d;
    assert_int_equal(r.n, 3);
    assert_true(r.v[0].has_now);
    assert_false(r.v[1].has_now);
    assert_non_null(strstr(r.v[1].msg0, "already defined in"));
    assert_true(ends(r.v[1].msg0, "/a.yaml"));
    assert_false(r.v[2].has_now);
    assert_true(ends(dagdir_find(d, "x")->path, "/a.yaml"));
    rec_clear(&r);

    /* the holder goes: b (first in name order) takes the id, c now fails on b */
    rm(dir, "a.yaml");
    expect_events(&loop, &r, 3);
    int ia = find_ev(&r, "/a.yaml"), ib = find_ev(&r, "/b.yaml"), ic = find_ev(&r, "/c.yaml");
    assert_true(ia >= 0 && ib >= 0 && ic >= 0);
    assert_true(r.v[ia].had_old && !r.v[ia].has_now);
    assert_true(!r.v[ib].had_old && r.v[ib].has_now);
    assert_string_equal(r.v[ib].now_id, "x");
    assert_true(!r.v[ic].has_now && ends(r.v[ic].msg0, "/b.yaml"));
    assert_true(ends(dagdir_find(d, "x")->path, "/b.yaml"));
    rec_clear(&r);

    /* a comes back with x: b, already loaded, keeps it */
    put_dag(dir, "a.yaml", "x", "true");
    expect_events(&loop, &r, 1);
    assert_false(r.v[0].has_now);
    assert_true(ends(r.v[0].msg0, "/b.yaml"));
    assert_true(ends(dagdir_find(d, "x")->path, "/b.yaml"));
    rec_clear(&r);

    /* the holder changes its id: a (first in name order) takes x */
    put_dag(dir, "b.yaml", "y", "echo b");
    expect_events(&loop, &r, 3);
    ia = find_ev(&r, "/a.yaml");
    ib = find_ev(&r, "/b.yaml");
    ic = find_ev(&r, "/c.yaml");
    assert_true(ia >= 0 && ib >= 0 && ic >= 0);
    assert_string_equal(r.v[ib].now_id, "y");
    assert_true(r.v[ia].has_now);
    assert_true(!r.v[ic].has_now && ends(r.v[ic].msg0, "/a.yaml"));
    assert_true(ends(dagdir_find(d, "x")->path, "/a.yaml"));
    assert_true(ends(dagdir_find(d, "y")->path, "/b.yaml"));
    rec_clear(&r);

    close_dir(&loop, d);
    assert_int_equal(uv_loop_close(&loop), 0);
    rm_rf(dir);
    free(dir);
}

static void watcher_reports_50_files_once_each(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = tmpdir();
    struct rec r = {0};
    struct dagdir *d;
    struct err derr = {0};
    assert_int_equal(dagdir_open(&loop, dir, on_change, &r, &d, &derr), 0);
    r.d = d;
    char name[32], id[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "f%02d.yaml", i);
        snprintf(id, sizeof(id), "f%02d", i);
        put_dag(dir, name, id, "true");
    }
    expect_events(&loop, &r, 50);
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "/f%02d.yaml", i);
        int k = find_ev(&r, name);
        assert_true(k >= 0);
        assert_true(r.v[k].has_now);
    }
    rec_clear(&r);
    /* all changed at once */
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "f%02d.yaml", i);
        snprintf(id, sizeof(id), "f%02d", i);
        put_dag(dir, name, id, "echo changed");
    }
    expect_events(&loop, &r, 50);
    for (int i = 0; i < 50; i++)
        assert_true(r.v[i].had_old && r.v[i].has_now);
    rec_clear(&r);
    /* all deleted, then two back with each other's ids (the id map drops its dead keys) */
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "f%02d.yaml", i);
        rm(dir, name);
    }
    expect_events(&loop, &r, 50);
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "f%02d", i);
        assert_true(r.v[i].had_old && !r.v[i].has_now);
        assert_null(dagdir_find(d, id));
    }
    rec_clear(&r);
    put_dag(dir, "f00.yaml", "f01", "true");
    put_dag(dir, "f01.yaml", "f00", "true");
    expect_events(&loop, &r, 2);
    assert_true(ends(dagdir_find(d, "f01")->path, "/f00.yaml"));
    assert_true(ends(dagdir_find(d, "f00")->path, "/f01.yaml"));
    assert_null(dagdir_find(d, "f02"));
    rec_clear(&r);
    close_dir(&loop, d);
    assert_int_equal(uv_loop_close(&loop), 0);
    rm_rf(dir);
    free(dir);
}

static void watcher_survives_hostile_files(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = tmpdir();
    put_dag(dir, "good.yaml", "good", "true");
    struct rec r = {0};
    struct dagdir *d;
    struct err derr = {0};
    assert_int_equal(dagdir_open(&loop, dir, on_change, &r, &d, &derr), 0);
    r.d = d;
    rec_clear(&r);

    char *p = pathof(dir, "fifo.yaml");
    assert_int_equal(mkfifo(p, 0644), 0);
    free(p);
    p = pathof(dir, "dir.yaml");
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    put(dir, ".swap.yaml.swp", "x");
    put(dir, "zero.yaml", "");
    expect_events(&loop, &r, 1); /* only the 0-byte file, as an import error */
    assert_true(ends(r.v[0].path, "/zero.yaml"));
    assert_false(r.v[0].has_now);
    assert_true(r.v[0].nerrors >= 1);
    rec_clear(&r);

    /* a regular file replaced by a directory is a removal */
    put_dag(dir, "turn.yaml", "turn", "true");
    expect_events(&loop, &r, 1);
    rm(dir, "turn.yaml");
    p = pathof(dir, "turn.yaml");
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    expect_events(&loop, &r, 2);
    assert_true(r.v[1].had_old && !r.v[1].has_now && r.v[1].nerrors == 0);
    rec_clear(&r);
    assert_non_null(dagdir_find(d, "good"));

    close_dir(&loop, d);
    assert_int_equal(uv_loop_close(&loop), 0);
    rm_rf(dir);
    free(dir);
}

static void watcher_keeps_going_when_the_folder_goes(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *top = tmpdir();
    char *dir = pathof(top, "dags");
    assert_int_equal(mkdir(dir, 0755), 0);
    struct rec r = {0};
    struct dagdir *d;
    struct err derr = {0};
    assert_int_equal(dagdir_open(&loop, dir, on_change, &r, &d, &derr), 0);
    r.d = d;
    char *moved = pathof(top, "moved");
    put_dag(dir, "a.yaml", "a", "true");
    expect_events(&loop, &r, 1);
    rec_clear(&r);

    /* moved away: nothing is reported, the DAG stays */
    assert_int_equal(rename(dir, moved), 0);
    assert_false(loopwait_until(&loop, &r.n, 1, 300));
    assert_non_null(dagdir_find(d, "a"));

    /* a new folder at the path: watched again (retry timer), read again */
    assert_int_equal(mkdir(dir, 0755), 0);
    put_dag(dir, "b.yaml", "b", "true");
    assert_true(loopwait_until(&loop, &r.n, 2, 5000));
    int ia = find_ev(&r, "/a.yaml"), ib = find_ev(&r, "/b.yaml");
    assert_true(ia >= 0 && ib >= 0);
    assert_false(r.v[ia].has_now);
    assert_true(r.v[ib].has_now);
    rec_clear(&r);
    put_dag(dir, "c.yaml", "c", "true");
    expect_events(&loop, &r, 1);
    rec_clear(&r);

    close_dir(&loop, d);
    assert_int_equal(uv_loop_close(&loop), 0);
    rm_rf(top);
    free(moved);
    free(top);
    free(dir);
}

static void close_with_pending_timers_makes_no_callback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = tmpdir();
    put_dag(dir, "a.yaml", "a", "true");
    put_dag(dir, "c.yaml", "c", "true");
    struct rec r = {0};
    struct dagdir *d;
    struct err derr = {0};
    assert_int_equal(dagdir_open(&loop, dir, on_change, &r, &d, &derr), 0);
    assert_int_equal(r.n, 2);
    rec_clear(&r);
    /* a write whose writer keeps the file open, a new file still open, a delete: each waits
     * for its backstop timer */
    char *pa = pathof(dir, "a.yaml"), *pb = pathof(dir, "b.yaml");
    int fa = open(pa, O_WRONLY | O_APPEND | O_CLOEXEC);
    int fb = open(pb, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fa >= 0 && fb >= 0);
    assert_int_equal(write(fa, "# more\n", 7), 7);
    assert_int_equal(write(fb, "dag: b\n", 7), 7);
    rm(dir, "c.yaml");
    /* let the events arrive (the timers are armed), then close before they fire */
    int never = 0;
    (void)loopwait_until(&loop, &never, 1, 30);
    assert_int_equal(r.n, 0);
    int done = 0;
    dagdir_close(d, on_done, &done);
    assert_true(loopwait_until(&loop, &done, 1, 2000));
    close(fa);
    close(fb);
    assert_false(loopwait_until(&loop, &r.n, 1, 300));
    assert_int_equal(uv_loop_close(&loop), 0);
    free(pa);
    free(pb);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scan_takes_dag_files_in_name_order),
        cmocka_unit_test(scan_refuses_a_duplicate_id_at_its_dag_line),
        cmocka_unit_test(scan_reports_import_errors_and_goes_on),
        cmocka_unit_test(scan_of_missing_and_unreadable_folders),
        cmocka_unit_test(scan_caps_the_number_of_files),
        cmocka_unit_test(scan_of_100_files_is_quick),
        cmocka_unit_test(watcher_reports_existing_files_on_open),
        cmocka_unit_test(watcher_follows_edits),
        cmocka_unit_test(watcher_resolves_duplicates),
        cmocka_unit_test(watcher_reports_50_files_once_each),
        cmocka_unit_test(watcher_survives_hostile_files),
        cmocka_unit_test(watcher_keeps_going_when_the_folder_goes),
        cmocka_unit_test(close_with_pending_timers_makes_no_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * dagdir.c - the DAG folder (see dagdir.h): a synchronous scan for the CLI,
 * and the daemon's watched view.
 *
 * Key idea: one entry per candidate file name, kept sorted by name in a
 * vector of pointers (each entry is allocated alone, so the libuv timer
 * inside it never moves) and also given a stable slot number. An hmap maps
 * each current DAG id to the slot of the entry holding it. hmap has no
 * removal: a released id is overwritten with DAGDIR_NONE, and the map is
 * rebuilt once such dead keys outnumber the live ones, so every change costs
 * O(1) amortized. Its keys are copies owned by the dagdir (d->keys), not the
 * DAGs' ids, so they stay valid whatever happens to the DAGs. Invariant: at most one entry holds a
 * DAG with a given id. A file whose id is already held fails and remembers that id (dup_id); when
 * the holder lets the id go (removed, failed, renamed), those files are loaded again.
 *
 * Files are read here, not by dag_load_file: stat first, then open with
 * O_NONBLOCK and fstat again, so a FIFO or a directory named x.yaml never
 * blocks the loop; the bytes go to dag_load_mem. A fingerprint of the bytes
 * (and the DAG's SHA-256 when it loads) tells a real change from a touch.
 *
 * Events: inotify on the folder, read through a uv_poll on its descriptor
 * (uv_fs_event cannot ask for IN_CLOSE_WRITE). A file is complete when its
 * writer closes it (IN_CLOSE_WRITE) or when it is renamed into place
 * (IN_MOVED_TO, how editors and config tools save): it is loaded at once. A
 * write, a new name, a delete, a rename away or a chmod (re)arms the entry's
 * timer, the backstop: after DAGDIR_QUIET_MS without events the file is
 * loaded anyway (a writer that keeps it open; a delete, where an editor's
 * rename-away is usually followed by the new file). A file its writer still
 * holds (written since its last close) that fails to load is not reported:
 * it is a half-written file until it is closed, or until DAGDIR_HELD_MS pass
 * without a write. Whatever wins, the bytes read must be the file's last
 * version: after reading a file, the pending events are read, and if any
 * came for that name the bytes are dropped and the new events decide.
 * Events only change the entries' state and list the files due; the files
 * are loaded after the batch (run_due), never while events are read.
 * An event on the folder itself (or an error) checks the folder; when it is
 * gone or replaced the watch stops, a warning is logged and a retry timer
 * restarts the watch, then every file is loaded again (an unchanged file
 * makes no callback); so does a queue overflow (IN_Q_OVERFLOW).
 *
 * Threads: dagdir_scan on any thread; everything else on the loop thread.
 * Ownership: the dagdir owns its entries, their paths and errors, and one
 * reference on each current DAG; the callback borrows them for the call.
 * dagdir_close frees nothing at once: every handle is closed and the last
 * close callback frees the whole.
 */
#include "ops/dagdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/suggest.h"
#include "base/vec.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "exec/notify.h"

#define DAGDIR_MAX_FILES 10000
#define DAGDIR_RETRY_MS  3000

/* What the folder's watch reports: a file complete (close after writing, renamed in), one being
 * written, created, gone or changed in mode, and the folder itself going away. */
#define DAGDIR_EVENTS                                                                              \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* ---- names and files ---- */

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* A name the folder takes as a DAG file: *.yaml or *.yml, not hidden, no editor leftover. */
static bool dagdir_candidate(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.')
        return false;
    if (name[n - 1] == '~' || (name[0] == '#' && name[n - 1] == '#'))
        return false;
    if (ends_with(name, n, ".swp") || ends_with(name, n, ".swx") || ends_with(name, n, ".tmp"))
        return false;
    return (n > 5 && ends_with(name, n, ".yaml")) || (n > 4 && ends_with(name, n, ".yml"));
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A list of names (VEC-compatible, so the VEC_ macros apply). */
struct dagdir_names {
    char **v; /* owned, each owned */
    size_t n, cap;
};

static void names_free(struct dagdir_names *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    VEC_FREE(v);
}

/* Lists the candidate regular files of folder (symlinks followed), sorted by name. 0 (a missing
 * folder has none), or a negative errno with *e filled. */
static int list_names(const char *folder, struct dagdir_names *out, struct err *e)
{
    int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int no = errno;
        if (no == ENOENT)
            return 0;
        return err_set(e, -no, "cannot read DAG folder '%s': %s", folder, strerror(no));
    }
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int no = errno;
        close(fd);
        return err_set(e, -no, "cannot read DAG folder '%s': %s", folder, strerror(no));
    }
    int r = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (!de) {
            if (errno)
                r = err_set(e, -errno, "cannot read DAG folder '%s': %s", folder, strerror(errno));
            break;
        }
        if (!dagdir_candidate(de->d_name))
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0) {
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                continue; /* gone, or a dangling symlink */
            /* kept: loading it reports why it cannot be read */
        } else if (!S_ISREG(st.st_mode)) {
            continue;
        }
        if (out->n >= DAGDIR_MAX_FILES) {
            r = err_set(e, -E2BIG, "too many DAG files in '%s' (the limit is %d)", folder,
                        DAGDIR_MAX_FILES);
            break;
        }
        VEC_PUSH(out, xstrdup(de->d_name));
    }
    closedir(dir);
    if (r < 0) {
        names_free(out);
        return r;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_names);
    return 0;
}

/* Reads the regular file at path. 0 with *text (malloc'd, NUL-terminated) and *len; 1 when it
 * is gone or not a regular file; -1 with an entry in errs when it cannot be read. */
static int read_file(const char *path, char **text, size_t *len, struct diag *errs)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return 1;
        diag_err(errs, path, 0, 0, "cannot read file: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode))
        return 1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return 1;
        diag_err(errs, path, 0, 0, "cannot open file: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) { /* replaced since stat */
        close(fd);
        return 1;
    }
    if (st.st_size > DAG_FILE_MAX) {
        diag_err(errs, path, 0, 0, "file too large (%lld bytes; the limit is %d)",
                 (long long)st.st_size, DAG_FILE_MAX);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            diag_err(errs, path, 0, 0, "cannot read file: %s", strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) { /* the file grew since fstat */
            if (cap > DAG_FILE_MAX) {
                diag_err(errs, path, 0, 0, "file too large (the limit is %d bytes)", DAG_FILE_MAX);
                free(buf);
                close(fd);
                return -1;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
    }
    close(fd);
    if (n > DAG_FILE_MAX) {
        diag_err(errs, path, 0, 0, "file too large (the limit is %d bytes)", DAG_FILE_MAX);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* FNV-1a, 64 bits: tells a changed failing file from an untouched one. */
static uint64_t fingerprint(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The 1-based line of the top-level `dag:` key, or 0. */
static int dag_key_line(const char *text, size_t len)
{
    int line = 1;
    size_t i = 0;
    while (i < len) {
        const char *s = text + i;
        size_t rest = len - i;
        size_t k = 0;
        if (rest >= 3 && memcmp(s, "dag", 3) == 0)
            k = 3;
        else if (rest >= 5 && (memcmp(s, "\"dag\"", 5) == 0 || memcmp(s, "'dag'", 5) == 0))
            k = 5;
        if (k) {
            while (k < rest && (s[k] == ' ' || s[k] == '\t'))
                k++;
            if (k < rest && s[k] == ':')
                return line;
        }
        const char *nl = memchr(s, '\n', rest);
        if (!nl)
            break;
        i = (size_t)(nl - text) + 1;
        line++;
    }
    return 0;
}

struct dagdir_load {
    struct dag *dag;  /* one reference, or NULL */
    struct diag errs; /* why dag == NULL */
    bool have_fp;     /* the bytes were read */
    uint64_t fp;      /* fingerprint of the bytes */
    size_t len;       /* their length */
    char *dup_id;     /* owned: the id held by an earlier file, when that made it fail */
};

/* Where an earlier file holds id: its path, or NULL. */
typedef const char *(*dagdir_taken_fn)(void *ctx, const char *id);

/* Reads and checks the file at path into *l (initialized here). 1 when the file is gone or is
 * not a regular file (nothing to release then), else 0 (release with load_release). */
static int load_path(const char *path, struct dagdir_load *l, dagdir_taken_fn taken, void *ctx)
{
    memset(l, 0, sizeof(*l));
    diag_init(&l->errs);
    char *text = NULL;
    size_t len = 0;
    int r = read_file(path, &text, &len, &l->errs);
    if (r == 1) {
        diag_release(&l->errs);
        return 1;
    }
    if (r < 0)
        return 0;
    l->have_fp = true;
    l->fp = fingerprint(text, len);
    l->len = len;
    l->dag = dag_load_mem(text, len, path, &l->errs);
    if (l->dag && dagdir_check_notify(l->dag, &l->errs) > 0) {
        dag_free(l->dag);
        l->dag = NULL;
    }
    if (l->dag) {
        const char *earlier = taken(ctx, l->dag->id);
        if (earlier) {
            int line = dag_key_line(text, len);
            diag_err(&l->errs, path, line, line ? 1 : 0, "dag '%s' is already defined in %s",
                     l->dag->id, earlier);
            l->dup_id = xstrdup(l->dag->id);
            dag_free(l->dag);
            l->dag = NULL;
        }
    }
    free(text);
    return 0;
}

/* ---- notify: hooks' notifier names ---- */

static struct notifier *known_notifiers; /* set once (dagdir_set_notifiers), then read-only */
static size_t nknown_notifiers;
static bool notifiers_known;

void dagdir_set_notifiers(const struct notifier *v, size_t n)
{
    notifiers_free(known_notifiers, nknown_notifiers);
    known_notifiers = notifiers_dup(v, n);
    nknown_notifiers = n;
    notifiers_known = true;
}

struct notify_check {
    const struct dag *dag;
    struct diag *d;
    size_t errors;
};

static void check_notify_one(void *ud, const struct dag_hook *h, const char *where)
{
    struct notify_check *c = ud;
    if (notifiers_find(known_notifiers, nknown_notifiers, h->notify))
        return;
    c->errors++;
    diag_err(c->d, c->dag->path, h->line, h->col, "'%s' names no notifier '%s'", where, h->notify);
    const char **names = xcalloc(nknown_notifiers ? nknown_notifiers : 1, sizeof(char *));
    for (size_t i = 0; i < nknown_notifiers; i++)
        names[i] = known_notifiers[i].name;
    const char *near = suggest_closest(h->notify, names, nknown_notifiers);
    if (near)
        diag_hint(c->d, "did you mean '%s'?", near);
    else
        diag_hint(c->d, "add it to 'notifiers' in baram.yaml");
    free(names);
}

size_t dagdir_check_notify(const struct dag *dag, struct diag *d)
{
    if (!notifiers_known)
        return 0;
    struct notify_check c = {dag, d, 0};
    dag_each_notify(dag, check_notify_one, &c);
    return c.errors;
}

static void load_release(struct dagdir_load *l)
{
    dag_free(l->dag);
    diag_release(&l->errs);
    free(l->dup_id);
}

static char *join(const char *folder, const char *name)
{
    return xasprintf("%s/%s", folder, name);
}

/* folder without its trailing slashes (but "/" stays "/"), malloc'd. */
static char *trim_folder(const char *folder)
{
    size_t n = strlen(folder);
    while (n > 1 && folder[n - 1] == '/')
        n--;
    return xstrndup(folder, n);
}

/* ---- dagdir_scan ---- */

struct scan_ctx {
    struct hmap ids; /* id -> index in files; keys borrowed from the DAGs */
    struct dagdir_file *files;
};

static const char *scan_taken(void *ctx, const char *id)
{
    struct scan_ctx *c = ctx;
    uint32_t i;
    return hmap_get(&c->ids, id, strlen(id), &i) ? c->files[i].path : NULL;
}

int dagdir_scan(const char *folder, struct dagdir_file **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    char *dir = trim_folder(folder);
    struct dagdir_names names = {0};
    int r = list_names(dir, &names, e);
    if (r < 0) {
        free(dir);
        return r;
    }
    struct scan_ctx c;
    hmap_init(&c.ids);
    c.files = xcalloc(names.n ? names.n : 1, sizeof(*c.files));
    size_t k = 0;
    for (size_t i = 0; i < names.n; i++) {
        char *path = join(dir, names.v[i]);
        struct dagdir_load l;
        if (load_path(path, &l, scan_taken, &c) == 1) {
            free(path);
            continue;
        }
        struct dagdir_file *f = &c.files[k];
        f->path = path;
        f->dag = l.dag;
        f->errors = l.errs;
        free(l.dup_id);
        if (f->dag)
            hmap_put(&c.ids, f->dag->id, strlen(f->dag->id), (uint32_t)k);
        k++;
    }
    hmap_release(&c.ids);
    names_free(&names);
    free(dir);
    *out = c.files;
    *n = k;
    return 0;
}

static const char *nothing_taken(void *ctx, const char *id)
{
    return NULL;
}

int dagdir_load(const char *path, struct dagdir_file **out)
{
    *out = NULL;
    struct dagdir_load l;
    if (load_path(path, &l, nothing_taken, NULL) == 1)
        return -ENOENT;
    struct dagdir_file *f = xcalloc(1, sizeof(*f));
    f->path = xstrdup(path);
    f->dag = l.dag;
    f->errors = l.errs;
    free(l.dup_id);
    *out = f;
    return 0;
}

void dagdir_free_files(struct dagdir_file *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].path);
        dag_free(v[i].dag);
        diag_release(&v[i].errors);
    }
    free(v);
}

/* ---- the watched folder ---- */

#define DAGDIR_NONE UINT32_MAX /* an id no file holds */

struct dagdir_ent {
    struct dagdir *d;     /* borrowed: the owner */
    char *name;           /* owned */
    uint32_t slot;        /* index in d->slots, stable while the entry lives */
    struct dagdir_file f; /* path, one DAG reference, errors: owned */
    bool present;         /* the file is known (reported); false while a new name is quiet */
    bool writing;         /* written (or created) since its writer last closed it */
    bool held;            /* a failed load was held back while writing: the next one reports */
    bool due;             /* complete: listed in d->due, to be loaded after the event batch */
    uint32_t seq;         /* events on this name so far: a load tells if it raced a write */
    bool have_fp;
    uint64_t fp;
    size_t len;
    char *dup_id;     /* owned: the id an earlier file holds, when that made this one fail */
    bool timer_live;  /* timer was initialized (it must be closed) */
    bool detached;    /* out of d->ents: the timer's close callback frees the entry */
    uv_timer_t timer; /* the backstop; data = this entry */
};

struct dagdir {
    uv_loop_t *loop; /* borrowed */
    char *folder;    /* owned, without trailing '/' */
    dagdir_change_fn cb;
    void *ud;
    VEC(struct dagdir_ent *) ents;  /* owned, sorted by name */
    VEC(struct dagdir_ent *) slots; /* borrowed from ents: slot -> entry, NULL when free */
    VEC(uint32_t) free_slots;
    struct hmap ids;  /* DAG id -> slot, or DAGDIR_NONE; keys in d->keys */
    VEC(char *) keys; /* owned: every key the hmap points to */
    size_t live;      /* ids held by an entry */
    VEC(char *) due;  /* owned: names of complete files, loaded after the event batch */
    bool resync_due;  /* events were lost (queue overflow): load every file again */
    int ifd;          /* the inotify descriptor, or -1 */
    int wd;           /* the folder's watch on ifd, or -1 */
    uv_poll_t poll;   /* readable ifd; data = this dagdir */
    bool poll_live;   /* poll was initialized (it must be closed) */

    /* The last IN_MOVED_FROM of a candidate name: its cookie and the name (owned, or NULL). */
    uint32_t moved_cookie;
    char *moved_from;

    bool watching;
    uv_timer_t retry; /* restarts a lost watch */
    dev_t dev;        /* the watched folder's identity */
    ino_t ino;
    bool full_logged;
    bool closing;
    int pending; /* handles being closed */
    void (*done)(void *ud);
    void *done_ud;
};

static void ent_free(struct dagdir_ent *e)
{
    free(e->name);
    free(e->f.path);
    dag_free(e->f.dag);
    diag_release(&e->f.errors);
    free(e->dup_id);
    free(e);
}

static void dagdir_finish(struct dagdir *d)
{
    for (size_t i = 0; i < d->ents.n; i++)
        ent_free(d->ents.v[i]);
    VEC_FREE(&d->ents);
    VEC_FREE(&d->slots);
    VEC_FREE(&d->free_slots);
    hmap_release(&d->ids);
    for (size_t i = 0; i < d->keys.n; i++)
        free(d->keys.v[i]);
    VEC_FREE(&d->keys);
    for (size_t i = 0; i < d->due.n; i++)
        free(d->due.v[i]);
    VEC_FREE(&d->due);
    free(d->moved_from);
    if (d->ifd >= 0)
        close(d->ifd);
    free(d->folder);
    void (*done)(void *) = d->done;
    void *ud = d->done_ud;
    free(d);
    if (done)
        done(ud);
}

static void closed_one(struct dagdir *d)
{
    if (--d->pending == 0 && d->closing)
        dagdir_finish(d);
}

static void on_ent_closed(uv_handle_t *h)
{
    struct dagdir_ent *e = h->data;
    struct dagdir *d = e->d;
    if (e->detached)
        ent_free(e);
    closed_one(d);
}

static void on_handle_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

/* Index of name in d->ents, or -1 with *pos where it would go. */
static long ent_index(const struct dagdir *d, const char *name, size_t *pos)
{
    size_t lo = 0, hi = d->ents.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->ents.v[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return -1;
}

static struct dagdir_ent *ent_get(const struct dagdir *d, const char *name)
{
    long i = ent_index(d, name, NULL);
    return i < 0 ? NULL : d->ents.v[i];
}

/* The entry for name, added (not present yet) when missing; NULL past the file cap. */
static struct dagdir_ent *ent_add(struct dagdir *d, const char *name)
{
    size_t pos = 0;
    long i = ent_index(d, name, &pos);
    if (i >= 0)
        return d->ents.v[i];
    if (d->ents.n >= DAGDIR_MAX_FILES) {
        if (!d->full_logged)
            log_warn("too many DAG files, some are ignored", "folder=%s limit=%d", log_q(d->folder),
                     DAGDIR_MAX_FILES);
        d->full_logged = true;
        return NULL;
    }
    struct dagdir_ent *e = xcalloc(1, sizeof(*e));
    e->d = d;
    e->name = xstrdup(name);
    e->f.path = join(d->folder, name);
    diag_init(&e->f.errors);
    if (d->free_slots.n) {
        e->slot = d->free_slots.v[--d->free_slots.n];
        d->slots.v[e->slot] = e;
    } else {
        e->slot = (uint32_t)d->slots.n;
        VEC_PUSH(&d->slots, e);
    }
    VEC_RESERVE(&d->ents, d->ents.n + 1);
    memmove(&d->ents.v[pos + 1], &d->ents.v[pos], (d->ents.n - pos) * sizeof(*d->ents.v));
    d->ents.v[pos] = e;
    d->ents.n++;
    return e;
}

/* id -> slot (or DAGDIR_NONE), with a key copy the map can keep. */
static void ids_put(struct dagdir *d, const char *id, uint32_t slot)
{
    char *key = xstrdup(id);
    VEC_PUSH(&d->keys, key);
    hmap_put(&d->ids, key, strlen(key), slot);
}

/* The map again from the entries, without dead keys. */
static void ids_rebuild(struct dagdir *d)
{
    hmap_release(&d->ids);
    hmap_init(&d->ids);
    for (size_t i = 0; i < d->keys.n; i++)
        free(d->keys.v[i]);
    d->keys.n = 0;
    d->live = 0;
    for (size_t i = 0; i < d->ents.n; i++) {
        const struct dagdir_ent *e = d->ents.v[i];
        if (e->f.dag) {
            ids_put(d, e->f.dag->id, e->slot);
            d->live++;
        }
    }
}

/* The entry in slot takes id. */
static void ids_take(struct dagdir *d, const char *id, uint32_t slot)
{
    ids_put(d, id, slot);
    d->live++;
}

/* Nobody holds id any more. */
static void ids_let_go(struct dagdir *d, const char *id)
{
    ids_put(d, id, DAGDIR_NONE);
    d->live--;
}

/* Drops the dead keys once they outnumber the live ones; entries must be consistent. */
static void ids_compact(struct dagdir *d)
{
    if (d->keys.n > 64 && d->keys.n > 4 * d->live)
        ids_rebuild(d);
}

/* The entry holding id, or NULL. */
static struct dagdir_ent *ids_get(const struct dagdir *d, const char *id)
{
    uint32_t slot;
    if (!hmap_get(&d->ids, id, strlen(id), &slot) || slot == DAGDIR_NONE)
        return NULL;
    return d->slots.v[slot];
}

/* Takes e out of d->ents, lets its id go and frees it (now, or once its timer is closed).
 * Returns its DAG reference, handed to the caller. */
static struct dag *ent_drop(struct dagdir *d, struct dagdir_ent *e)
{
    long i = ent_index(d, e->name, NULL);
    if (i >= 0) {
        memmove(&d->ents.v[i], &d->ents.v[i + 1], (d->ents.n - (size_t)i - 1) * sizeof(*d->ents.v));
        d->ents.n--;
    }
    struct dag *dag = e->f.dag;
    e->f.dag = NULL;
    if (dag) {
        ids_let_go(d, dag->id);
        ids_compact(d);
    }
    d->slots.v[e->slot] = NULL;
    VEC_PUSH(&d->free_slots, e->slot);
    e->detached = true;
    if (e->timer_live) {
        d->pending++;
        uv_close((uv_handle_t *)&e->timer, on_ent_closed);
    } else {
        ent_free(e);
    }
    return dag;
}

struct taken_ctx {
    struct dagdir *d;
    struct dagdir_ent *self;
};

static const char *watch_taken(void *ctx, const char *id)
{
    struct taken_ctx *c = ctx;
    struct dagdir_ent *h = ids_get(c->d, id);
    return h && h != c->self ? h->f.path : NULL;
}

static bool diag_same(const struct diag *a, const struct diag *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct diag_entry *x = &a->v[i], *y = &b->v[i];
        if (x->level != y->level || x->line != y->line || x->col != y->col ||
            strcmp(x->msg, y->msg) != 0)
            return false;
        if ((x->hint == NULL) != (y->hint == NULL) || (x->hint && strcmp(x->hint, y->hint) != 0))
            return false;
    }
    return true;
}

static void reload(struct dagdir *d, struct dagdir_ent *e, bool hold_failure);
static void drain(struct dagdir *d);
static void arm(struct dagdir *d, struct dagdir_ent *e, uint64_t ms);

/* The DAG id was let go: load again, in name order, every file that failed on it. */
static void resolve_dups(struct dagdir *d, const char *id)
{
    struct dagdir_names names = {0};
    for (size_t i = 0; i < d->ents.n; i++) {
        struct dagdir_ent *e = d->ents.v[i];
        if (e->present && e->dup_id && strcmp(e->dup_id, id) == 0)
            VEC_PUSH(&names, xstrdup(e->name));
    }
    for (size_t i = 0; i < names.n && !d->closing; i++) {
        struct dagdir_ent *e = ent_get(d, names.v[i]);
        if (e)
            reload(d, e, false);
    }
    names_free(&names);
}

/* Loads e's file again and reports it if anything changed. With hold_failure (its writer may
 * still be writing it), a file that fails to load is not reported: e is held, and reported
 * once DAGDIR_HELD_MS pass without a write. May free e. */
static void reload(struct dagdir *d, struct dagdir_ent *e, bool hold_failure)
{
    struct dagdir_load l;
    struct taken_ctx tc = {d, e};
    uint32_t seq = e->seq;
    int gone = load_path(e->f.path, &l, watch_taken, &tc);
    drain(d);
    if (e->seq != seq) {
        /* Written, replaced or removed while it was read: these bytes may be half of the
         * next version. The new events decide when it is read again. */
        if (gone != 1)
            load_release(&l);
        return;
    }
    if (gone != 1 && hold_failure && !l.dag) {
        load_release(&l);
        e->held = true;
        arm(d, e, DAGDIR_HELD_MS);
        return;
    }
    e->held = false;
    if (gone == 1) {
        if (!e->present) {
            dag_free(ent_drop(d, e));
            return;
        }
        char *path = e->f.path;
        e->f.path = NULL;
        struct dag *old = ent_drop(d, e); /* may free e: keep what the report needs */
        e = NULL;
        struct diag none;
        diag_init(&none);
        d->cb(d->ud, path, old, NULL, &none);
        char *let_go = old ? xstrdup(old->id) : NULL;
        dag_free(old);
        free(path);
        if (let_go && !d->closing)
            resolve_dups(d, let_go);
        free(let_go);
        return;
    }
    bool changed;
    if (!e->present)
        changed = true;
    else if (e->f.dag && l.dag)
        changed = strcmp(e->f.dag->hash, l.dag->hash) != 0;
    else if (!e->f.dag && !l.dag)
        changed = e->have_fp != l.have_fp || e->fp != l.fp || e->len != l.len ||
                  !diag_same(&e->f.errors, &l.errs);
    else
        changed = true;
    if (!changed) {
        free(e->dup_id);
        e->dup_id = l.dup_id;
        l.dup_id = NULL;
        load_release(&l);
        return;
    }
    struct dag *old = e->f.dag;
    struct diag old_errs = e->f.errors;
    e->f.dag = l.dag;
    e->f.errors = l.errs;
    e->present = true;
    e->have_fp = l.have_fp;
    e->fp = l.fp;
    e->len = l.len;
    free(e->dup_id);
    e->dup_id = l.dup_id;
    if (old && (!e->f.dag || strcmp(old->id, e->f.dag->id) != 0))
        ids_let_go(d, old->id);
    if (e->f.dag && (!old || strcmp(old->id, e->f.dag->id) != 0))
        ids_take(d, e->f.dag->id, e->slot);
    ids_compact(d);
    d->cb(d->ud, e->f.path, old, e->f.dag, &e->f.errors);
    char *let_go = NULL;
    if (old && (!e->f.dag || strcmp(old->id, e->f.dag->id) != 0))
        let_go = xstrdup(old->id);
    dag_free(old);
    diag_release(&old_errs);
    if (let_go && !d->closing)
        resolve_dups(d, let_go);
    free(let_go);
}

static void run_due(struct dagdir *d);
static void resync(struct dagdir *d);

/* The backstop: no event on e for a while. A file still open for writing may be half written:
 * a failure is held back once (see reload). */
static void on_quiet(uv_timer_t *t)
{
    struct dagdir_ent *e = t->data;
    struct dagdir *d = e->d;
    if (d->closing)
        return;
    reload(d, e, e->writing && !e->held);
    run_due(d);
}

/* (Re)starts e's backstop. */
static void arm(struct dagdir *d, struct dagdir_ent *e, uint64_t ms)
{
    if (!e->timer_live) {
        uv_timer_init(d->loop, &e->timer);
        e->timer.data = e;
        e->timer_live = true;
    }
    uv_timer_start(&e->timer, on_quiet, ms, 0);
}

/* e's file is complete: load it after the event batch. */
static void mark_due(struct dagdir *d, struct dagdir_ent *e)
{
    if (e->timer_live)
        uv_timer_stop(&e->timer);
    if (!e->due) {
        e->due = true;
        VEC_PUSH(&d->due, xstrdup(e->name));
    }
}

/* Loads the files found complete, in the order their events came (loading one reads the
 * events that came meanwhile, which may add more), and everything after an overflow. */
static void run_due(struct dagdir *d)
{
    if (d->resync_due && !d->closing) {
        d->resync_due = false;
        log_warn("DAG folder events were lost, reading every file again", "folder=%s",
                 log_q(d->folder));
        resync(d);
    }
    for (size_t i = 0; i < d->due.n && !d->closing; i++) {
        struct dagdir_ent *e = ent_get(d, d->due.v[i]);
        if (e && e->due) {
            e->due = false;
            reload(d, e, false);
        }
    }
    for (size_t i = 0; i < d->due.n; i++)
        free(d->due.v[i]);
    d->due.n = 0;
}

/* Loads every file again, known or new, in name order (after the watch was restarted). */
static void resync(struct dagdir *d)
{
    struct dagdir_names names = {0};
    struct err le = {0};
    if (list_names(d->folder, &names, &le) < 0) {
        log_warn("cannot list the DAG folder", "error=%s", log_q(err_msg(&le)));
        return;
    }
    for (size_t i = 0; i < names.n; i++)
        (void)ent_add(d, names.v[i]);
    names_free(&names);
    for (size_t i = 0; i < d->ents.n; i++)
        VEC_PUSH(&names, xstrdup(d->ents.v[i]->name));
    for (size_t i = 0; i < names.n && !d->closing; i++) {
        struct dagdir_ent *e = ent_get(d, names.v[i]);
        if (e)
            reload(d, e, false);
    }
    names_free(&names);
}

static void on_inotify(uv_poll_t *h, int status, int events);

/* Starts watching the folder (the inotify descriptor and its poll made on first use): 0 or a
 * negative errno. */
static int watch_start(struct dagdir *d)
{
    if (d->ifd < 0) {
        d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (d->ifd < 0)
            return -errno;
    }
    if (!d->poll_live) {
        int r = uv_poll_init(d->loop, &d->poll, d->ifd);
        if (r < 0)
            return r;
        d->poll.data = d;
        d->poll_live = true;
    }
    d->wd = inotify_add_watch(d->ifd, d->folder, DAGDIR_EVENTS);
    if (d->wd < 0)
        return -errno;
    struct stat st;
    if (stat(d->folder, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int r = errno ? -errno : -ENOTDIR;
        (void)inotify_rm_watch(d->ifd, d->wd);
        d->wd = -1;
        return r;
    }
    int r = uv_poll_start(&d->poll, UV_READABLE, on_inotify);
    if (r < 0) {
        (void)inotify_rm_watch(d->ifd, d->wd);
        d->wd = -1;
        return r;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->watching = true;
    return 0;
}

static void on_retry(uv_timer_t *t)
{
    struct dagdir *d = t->data;
    if (d->closing || watch_start(d) < 0)
        return;
    uv_timer_stop(&d->retry);
    log_info("DAG folder watched again", "folder=%s", log_q(d->folder));
    resync(d);
    run_due(d);
}

static void watch_lost(struct dagdir *d, const char *why)
{
    if (d->watching) {
        /* Events already queued for the old watch are ignored by their descriptor. */
        (void)inotify_rm_watch(d->ifd, d->wd);
        d->wd = -1;
        d->watching = false;
    }
    log_warn("DAG folder not watched, keeping the DAGs loaded", "folder=%s error=%s",
             log_q(d->folder), log_q(why));
    uv_timer_start(&d->retry, on_retry, DAGDIR_RETRY_MS, DAGDIR_RETRY_MS);
}

/* After an event on the folder itself: is it still the one watched? */
static void check_folder(struct dagdir *d)
{
    struct stat st;
    if (stat(d->folder, &st) < 0)
        watch_lost(d, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        watch_lost(d, "not a directory");
    else if (st.st_dev != d->dev || st.st_ino != d->ino)
        watch_lost(d, "the folder was replaced");
}

/* One event: updates the entry's state; loads nothing (see run_due). */
static void on_event(struct dagdir *d, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        d->resync_due = true;
        return;
    }
    if (!d->watching || ev->wd != d->wd)
        return; /* a watch given up */
    if (ev->mask & IN_IGNORED) {
        watch_lost(d, "the kernel dropped the watch");
        return;
    }
    if (ev->len == 0 || ev->name[0] == '\0') { /* the folder itself */
        check_folder(d);
        return;
    }
    if (!dagdir_candidate(ev->name))
        return;
    struct dagdir_ent *e = ent_add(d, ev->name);
    if (!e)
        return;
    e->seq++;
    if ((ev->mask & IN_MOVED_TO) && d->moved_from && ev->cookie == d->moved_cookie) {
        /* A rename in the folder (mv a.yaml b.yaml): the old name goes first, at once, so
         * the DAG is not defined twice for a moment. */
        struct dagdir_ent *from = ent_get(d, d->moved_from);
        if (from && from != e)
            mark_due(d, from);
    }
    if (ev->mask & IN_MOVED_FROM) {
        free(d->moved_from);
        d->moved_from = xstrdup(ev->name);
        d->moved_cookie = ev->cookie;
    }
    if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        e->writing = false;
        e->held = false;
        mark_due(d, e);
    } else if (ev->mask & (IN_MODIFY | IN_CREATE)) {
        e->writing = true; /* complete again at its close, whatever came before */
        e->held = false;
        e->due = false;
        arm(d, e, DAGDIR_QUIET_MS);
    } else {
        if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
            e->writing = false;
        if (!e->due)
            arm(d, e, DAGDIR_QUIET_MS);
    }
}

/* Reads every pending event (never loads a file: see run_due). */
static void drain(struct dagdir *d)
{
    union {
        struct inotify_event ev;
        char bytes[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)];
    } buf;
    while (d->ifd >= 0 && !d->closing) {
        ssize_t n = read(d->ifd, buf.bytes, sizeof buf.bytes);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            watch_lost(d, strerror(errno));
            d->resync_due = true;
        }
        if (n <= 0)
            return;
        for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf.bytes + off);
            on_event(d, ev);
            off += sizeof(struct inotify_event) + ev->len;
        }
    }
}

static void on_inotify(uv_poll_t *h, int status, int events)
{
    struct dagdir *d = h->data;
    (void)events;
    if (d->closing)
        return;
    if (status < 0) {
        uv_poll_stop(&d->poll);
        watch_lost(d, uv_strerror(status));
        return;
    }
    drain(d);
    run_due(d);
}

/* mkdir -p path, 0755. 0 or a negative errno. */
static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    int r = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            r = -errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return r;
}

int dagdir_open(struct uv_loop_s *loop, const char *folder, dagdir_change_fn cb, void *ud,
                struct dagdir **out, struct err *e)
{
    *out = NULL;
    if (!*folder)
        return err_set(e, -EINVAL, "no DAG folder given");
    char *dir = trim_folder(folder);
    struct stat st;
    if (stat(dir, &st) < 0 && errno == ENOENT) {
        int r = mkdir_p(dir);
        if (r < 0) {
            (void)err_set(e, r, "cannot create DAG folder '%s': %s", dir, strerror(-r));
            free(dir);
            return r;
        }
    }
    /* Fail before any handle exists when the folder cannot be read. */
    struct dagdir_names names = {0};
    int r = list_names(dir, &names, e);
    if (r < 0) {
        free(dir);
        return r;
    }
    names_free(&names);

    struct dagdir *d = xcalloc(1, sizeof(*d));
    d->loop = loop;
    d->folder = dir;
    d->cb = cb;
    d->ud = ud;
    d->ifd = -1;
    d->wd = -1;
    hmap_init(&d->ids);
    uv_timer_init(loop, &d->retry);
    d->retry.data = d;
    /* Watch first, then read: a file written meanwhile gets an event. */
    r = watch_start(d);
    if (r < 0)
        watch_lost(d, uv_strerror(r));
    resync(d);
    run_due(d);
    *out = d;
    return 0;
}

const struct dag *dagdir_find(const struct dagdir *d, const char *dag_id)
{
    if (!d)
        return NULL;
    const struct dagdir_ent *e = ids_get(d, dag_id);
    return e ? e->f.dag : NULL;
}

void dagdir_each(const struct dagdir *d,
                 void (*fn)(void *ud, const char *path, const struct dag *dag,
                            const struct diag *errors),
                 void *ud)
{
    for (size_t i = 0; i < d->ents.n; i++) {
        const struct dagdir_ent *e = d->ents.v[i];
        if (e->present)
            fn(ud, e->f.path, e->f.dag, &e->f.errors);
    }
}

void dagdir_close(struct dagdir *d, void (*done)(void *ud), void *ud)
{
    if (!d) {
        if (done)
            done(ud);
        return;
    }
    d->closing = true;
    d->done = done;
    d->done_ud = ud;
    for (size_t i = 0; i < d->ents.n; i++) {
        struct dagdir_ent *e = d->ents.v[i];
        if (e->timer_live) {
            d->pending++;
            uv_close((uv_handle_t *)&e->timer, on_ent_closed);
        }
    }
    if (d->poll_live) {
        d->pending++;
        uv_close((uv_handle_t *)&d->poll, on_handle_closed);
    }
    d->pending++;
    uv_close((uv_handle_t *)&d->retry, on_handle_closed);
}

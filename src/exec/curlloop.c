/*
 * curlloop.c - curl multi socket interface on libuv; see curlloop.h.
 *
 * Key idea: curl decides what to watch, libuv watches. Each socket curl wants
 * watched gets a struct curlloop_sock (uv_poll inside) attached to curl with
 * curl_multi_assign(); curl's single timeout is one uv_timer. Every event
 * ends in curl_multi_socket_action() followed by a drain of CURLMSG_DONE
 * messages, which are passed to each transfer's done callback after the easy
 * handle has left the multi handle.
 *
 * Ownership: the curlloop owns the CURLM, the timer and every curlloop_sock;
 * a curlloop_xfer (done callback and argument) is owned by the curlloop from
 * curlloop_add() until done or remove. uv handles live inside their owner;
 * pending_closes counts the close callbacks still due, and the curlloop
 * itself is freed by the last one once curlloop_free() asked for it.
 * Loop thread only.
 */
#include "exec/curlloop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xalloc.h"

struct curlloop_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct curlloop *cl;               /* borrowed: outlives every sock */
    struct curlloop_sock *prev, *next; /* cl->socks, while not closing */
};

struct curlloop_xfer {
    curlloop_done_fn *done;
    void *arg;
};

struct curlloop {
    uv_loop_t *loop; /* borrowed */
    CURLM *multi;    /* owned */
    uv_timer_t timer;
    struct curlloop_sock *socks; /* owned, watched sockets */
    unsigned running;            /* transfers added, not finished or removed */
    unsigned pending_closes;     /* uv close callbacks still due */
    bool dying;                  /* curlloop_free() was called */
};

static void curlloop_maybe_release(struct curlloop *cl)
{
    if (cl->dying && cl->pending_closes == 0)
        free(cl);
}

static void curlloop_sock_closed(uv_handle_t *h)
{
    struct curlloop_sock *s = h->data;
    struct curlloop *cl = s->cl;
    free(s);
    cl->pending_closes--;
    curlloop_maybe_release(cl);
}

static void curlloop_sock_close(struct curlloop_sock *s)
{
    struct curlloop *cl = s->cl;
    if (s->prev)
        s->prev->next = s->next;
    else
        cl->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    uv_poll_stop(&s->poll);
    cl->pending_closes++;
    uv_close((uv_handle_t *)&s->poll, curlloop_sock_closed);
}

/* Hands every finished transfer to its done callback. */
static void curlloop_drain(struct curlloop *cl)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(cl->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;
        struct curlloop_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(cl->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (!x)
            continue;
        cl->running--;
        curlloop_done_fn *done = x->done;
        void *arg = x->arg;
        free(x);
        done(easy, result, arg);
    }
}

static void curlloop_action(struct curlloop *cl, curl_socket_t fd, int flags)
{
    int still;
    curl_multi_socket_action(cl->multi, fd, flags, &still);
    curlloop_drain(cl);
}

static void curlloop_on_poll(uv_poll_t *p, int status, int events)
{
    struct curlloop_sock *s = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    /* s may be closed by curl's socket callback during the action: read it first. */
    curlloop_action(s->cl, s->fd, flags);
}

static void curlloop_on_timer(uv_timer_t *t)
{
    struct curlloop *cl = t->data;
    curlloop_action(cl, CURL_SOCKET_TIMEOUT, 0);
}

static int curlloop_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct curlloop *cl = userp;
    struct curlloop_sock *s = socketp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(cl->multi, fd, NULL);
            curlloop_sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->cl = cl;
        if (uv_poll_init_socket(cl->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = cl->socks;
        if (cl->socks)
            cl->socks->prev = s;
        cl->socks = s;
        curl_multi_assign(cl->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    if (uv_poll_start(&s->poll, events, curlloop_on_poll) < 0)
        return -1;
    return 0;
}

static int curlloop_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct curlloop *cl = userp;
    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&cl->timer);
        return 0;
    }
    /* Never call curl_multi_socket_action from here: a 0 timeout fires on the next turn. */
    return uv_timer_start(&cl->timer, curlloop_on_timer, (uint64_t)timeout_ms, 0) < 0 ? -1 : 0;
}

#define CURLLOOP_FD_SCAN 65536 /* fds above this are not checked */

/* Calls fn for every open socket fd of the process (through /proc/self/fd; nothing happens
 * where /proc is missing). A socket is told by its link ("socket:[INODE]"), not by fstat():
 * the API's threads accept connections meanwhile, and reading the links touches none of
 * their fds. */
static void curlloop_each_socket(void (*fn)(int fd, unsigned char *set), unsigned char *set)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd < 0 || fd >= CURLLOOP_FD_SCAN || fd == dirfd(d))
            continue;
        char link[32];
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
        if (n > 7 && memcmp(link, "socket:", 7) == 0)
            fn((int)fd, set);
    }
    closedir(d);
}

static void curlloop_mark(int fd, unsigned char *set)
{
    set[fd / 8] |= (unsigned char)(1u << (fd % 8));
}

static void curlloop_cloexec_if_new(int fd, unsigned char *set)
{
    if (set[fd / 8] & (1u << (fd % 8)))
        return;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC))
        (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

int curlloop_new(uv_loop_t *loop, struct curlloop **out)
{
    *out = NULL;
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!v) /* libcurl could not be opened (exec/lazy_curl.c; the reason is logged) */
        return -ELIBACC;
    if (!(v->features & CURL_VERSION_ASYNCHDNS))
        return -ENOTSUP;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -ENOMEM;
    /* libcurl 7.88 makes a socketpair for curl_multi_wakeup() in curl_multi_init(), without
     * SOCK_CLOEXEC; tasks are spawned from this process, so mark the new sockets close-on-exec
     * (sockets of other threads opened meanwhile get the flag too, which they should have). */
    unsigned char *before = xcalloc(CURLLOOP_FD_SCAN / 8, 1);
    curlloop_each_socket(curlloop_mark, before);
    CURLM *multi = curl_multi_init();
    if (multi)
        curlloop_each_socket(curlloop_cloexec_if_new, before);
    free(before);
    if (!multi) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    struct curlloop *cl = xcalloc(1, sizeof(*cl));
    cl->loop = loop;
    cl->multi = multi;
    uv_timer_init(loop, &cl->timer);
    cl->timer.data = cl;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, curlloop_socket_cb);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, curlloop_timer_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, cl);
    *out = cl;
    return 0;
}

static void curlloop_timer_closed(uv_handle_t *h)
{
    struct curlloop *cl = h->data;
    cl->pending_closes--;
    curlloop_maybe_release(cl);
}

void curlloop_free(struct curlloop *cl)
{
    if (!cl)
        return;
    assert(cl->running == 0);
    /* Cleanup closes cached connections, which calls curlloop_socket_cb with CURL_POLL_REMOVE:
     * the socks and the timer must still be open here. */
    curl_multi_cleanup(cl->multi);
    cl->multi = NULL;
    curl_global_cleanup();
    while (cl->socks)
        curlloop_sock_close(cl->socks);
    uv_timer_stop(&cl->timer);
    cl->pending_closes++;
    cl->dying = true;
    uv_close((uv_handle_t *)&cl->timer, curlloop_timer_closed);
}

int curlloop_add(struct curlloop *cl, CURL *easy, curlloop_done_fn *done, void *arg)
{
    struct curlloop_xfer *x = xmalloc(sizeof(*x));
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    if (curl_multi_add_handle(cl->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -EIO;
    }
    cl->running++;
    return 0;
}

void curlloop_remove(struct curlloop *cl, CURL *easy)
{
    struct curlloop_xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (!x)
        return;
    curl_multi_remove_handle(cl->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    cl->running--;
    free(x);
}

unsigned curlloop_running(const struct curlloop *cl)
{
    return cl->running;
}

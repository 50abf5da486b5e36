/*
 * curlloop.h - libcurl's multi interface driven by a libuv loop, so HTTP
 * transfers run inside the event loop without threads of our own (STYLE.md
 * 7): curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one
 * uv_poll per socket) and when to call it back (CURLMOPT_TIMERFUNCTION -> one
 * uv_timer); both call curl_multi_socket_action(), and finished transfers
 * (CURLMSG_DONE) are handed to their done callback.
 *
 * DNS never blocks the loop: Debian's libcurl uses its threaded resolver
 * (curlloop_new() fails with -ENOTSUP if libcurl lacks asynchronous DNS).
 *
 * Close-on-exec: curl_multi_init() (libcurl 7.88) opens a wakeup socketpair
 * without SOCK_CLOEXEC; curlloop_new() marks it. Transfer sockets are the
 * caller's job (httptask sets CURLOPT_OPENSOCKETFUNCTION). Known gap: the
 * threaded resolver's own short-lived socketpair, which exists only while a
 * host name is being resolved (never for numeric hosts or "localhost"), may
 * lack the flag.
 *
 * One curlloop per uv loop; it owns the CURLM and its uv handles; the caller
 * owns each easy handle. Loop thread only.
 */
#ifndef BARAM_EXEC_CURLLOOP_H
#define BARAM_EXEC_CURLLOOP_H

#include <curl/curl.h>
#include <uv.h>

#include "base/compiler.h"

struct curlloop;

/* A transfer finished (result is CURLE_OK or the curl error). The easy handle is already out
 * of the multi handle and back in the caller's hands: the callback may clean it up, and may call
 * curlloop_add() / curlloop_remove() (never curlloop_free()). */
typedef void curlloop_done_fn(CURL *easy, CURLcode result, void *arg);

/* Makes a curlloop on loop: 0 and *out, or -ENOTSUP (libcurl without async DNS) or -ENOMEM
 * (curl_multi_init failed). Calls curl_global_init (reference-counted, thread-safe in
 * libcurl >= 7.84). */
int curlloop_new(uv_loop_t *loop, struct curlloop **out) WARN_UNUSED;

/* Frees cl. Every transfer must be finished or removed first. Closes its uv handles: the memory
 * is released by their close callbacks, so run the loop once more (uv_run) before
 * uv_loop_close(). NULL is a no-op. Never call it from a curlloop callback. */
void curlloop_free(struct curlloop *cl);

/* Starts a transfer: done(easy, result, arg) is called once when it ends, never from within
 * curlloop_add. Sets CURLOPT_PRIVATE on easy (the caller must not use it). 0, or -EIO if curl
 * refused the handle (then done is not called). */
int curlloop_add(struct curlloop *cl, CURL *easy, curlloop_done_fn *done, void *arg) WARN_UNUSED;

/* Stops a transfer that was added and has not finished; done is not called. Safe to call for
 * an easy handle that is not in cl (no-op). */
void curlloop_remove(struct curlloop *cl, CURL *easy);

/* Transfers added and not yet finished or removed. */
unsigned curlloop_running(const struct curlloop *cl);

#endif

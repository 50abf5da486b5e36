/*
 * tryspec.h - a try's spec: everything a worker needs to run one try of a task
 * (SPEC section 12), as the JSON the scheduler puts in ti_queue.spec.
 *
 * The scheduler computes what it computes for a local try (the expanded command,
 * the try's environment, the http call, the wait's checks), fills a struct
 * tryspec and encodes it; a worker decodes it and runs the try. The format:
 *
 *   {"v":1,"kind":"run"|"http"|"wait","dag":"id","run_id":"...","task":"name",
 *    "map_index":-1,"task_id":"name or name[3]","try":1,"queue":"default",
 *    "dir":"/abs/dag/folder","timeout_ms":0,"grace_ms":10000,
 *    "cmd":"...","env":["K=V",...],
 *    "http":{"method":"GET","url":"...","body":null|"...","headers":[["N","V"]],
 *            "expect":[200],"timeout_ms":0,"cb_failures":0,"cb_reset_ms":0},
 *    "wait":{"file":"/abs"|null,"http_url":"..."|null,"every_ms":1000,"timeout_ms":0},
 *    "mask":["secret value",...]}
 *
 * "mask" (optional, absent when empty) lists the values of secrets the worker writes as ***
 * in the try's log (exec/mask.h).
 *
 * Any string may instead be written {"b64":"<base64>"}: the encoder does so for
 * bytes that are not valid UTF-8 or that hold a NUL (a command or a variable can
 * carry an upstream's raw output), so the JSON stays valid for PostgreSQL. Only
 * http.body may hold a NUL once decoded; every other string is a C string.
 *
 * The decoder is strict about what it reads (types, ranges, sizes: at most
 * TRYSPEC_ENV_MAX variables, TRYSPEC_STR_MAX bytes per string and for the body,
 * "v" must be 1) and ignores keys it does not know, so a newer scheduler may add
 * some. Required: v, kind, dag, run_id, task, task_id, try, and cmd (run),
 * http.url (http), wait.file or wait.http_url (wait); the rest has defaults
 * (map_index -1, queue "default", dir NULL, timeouts 0, grace_ms 10000,
 * wait.every_ms 1000, http.method "GET").
 *
 * Pure functions, any thread; nothing is kept between calls.
 */
#ifndef BARAM_EXEC_TRYSPEC_H
#define BARAM_EXEC_TRYSPEC_H

#include <stddef.h>
#include <stdint.h>

#define TRYSPEC_VERSION      1
#define TRYSPEC_ENV_MAX      4096               /* variables in env */
#define TRYSPEC_STR_MAX      (1024 * 1024)      /* bytes of one string, and of http.body */
#define TRYSPEC_HEADERS_MAX  256                /* http.headers */
#define TRYSPEC_EXPECT_MAX   64                 /* http.expect */
#define TRYSPEC_JSON_MAX     (64 * 1024 * 1024) /* bytes of a whole spec */
#define TRYSPEC_GRACE_MS_DEF 10000

enum tryspec_kind { TRYSPEC_RUN, TRYSPEC_HTTP, TRYSPEC_WAIT };

struct tryspec_header {
    char *name, *value; /* owned; value may be NULL (sent empty) */
};

/* Every pointer is owned by the struct (tryspec_release frees them); NULL when absent. */
struct tryspec {
    enum tryspec_kind kind;
    char *dag, *run_id, *task, *task_id, *queue, *dir;
    int map_index, try_number; /* -1 when not mapped; >= 1 */
    int64_t timeout_ms, grace_ms;
    char *cmd;  /* run: the expanded shell command */
    char **env; /* "K=V": baram's own variables only (the worker adds its own under them) */
    size_t nenv;
    char **mask; /* vars: secrets' values to mask in the log */
    size_t nmask;
    struct {
        char *method, *url, *body; /* body may hold NULs: body_len bytes (+ a NUL) */
        size_t body_len;
        struct tryspec_header *headers;
        size_t nheaders;
        int *expect; /* accepted statuses; none: any 2xx */
        size_t nexpect;
        int64_t timeout_ms;
        int cb_failures;
        int64_t cb_reset_ms;
    } http;
    struct {
        char *file, *http_url; /* one or both */
        int64_t every_ms, timeout_ms;
    } wait;
};

/* The spec as compact JSON: malloc'd, NUL-terminated (free() it). NULL only when s breaks
 * this header's contract (a required string NULL, a count without its array). */
char *tryspec_encode(const struct tryspec *s);

/* Reads len bytes of json into *out (zeroed first; tryspec_release it on success only).
 * 0, or -EINVAL with *msg a malloc'd message for people ("try spec: key 'cmd' must be a
 * string") and *out left empty. Never aborts on any input. */
int tryspec_decode(const char *json, size_t len, struct tryspec *out, char **msg);

/* Frees what s owns and zeroes it; s may be zeroed or half-filled. */
void tryspec_release(struct tryspec *s);

#endif

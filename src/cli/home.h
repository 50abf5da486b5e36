/*
 * home.h - the home folder and its configuration (SPEC section 4).
 *
 * The home is chosen as: the --home flag > BARAM_HOME > ./.baram. It holds
 * baram.db, logs/ and secret.key, and optionally baram.yaml, which sets
 * dags, db, listen, parallelism, pools, auth, api (max_rps, threads),
 * http (max_per_host), log_level and timezone. Each key can be overridden by
 * BARAM_<KEY> in the environment (BARAM_DAGS, BARAM_DB, BARAM_LISTEN,
 * BARAM_PARALLELISM, BARAM_API_MAX_RPS, BARAM_API_THREADS,
 * BARAM_HTTP_MAX_PER_HOST, BARAM_LOG_LEVEL, BARAM_TIMEZONE), and commands apply their own
 * flags last.
 *
 * Config problems are diagnostics (FILE:LINE:COL: error: MESSAGE, with a
 * did-you-mean hint for unknown keys); an environment override that is bad
 * is reported with the variable's name as its "file". Main thread only.
 */
#ifndef BARAM_CLI_HOME_H
#define BARAM_CLI_HOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/log.h"

struct diag;
struct err;
struct tz;
struct notifier;
struct store;

#define HOME_DEFAULT_DIR         ".baram"
#define HOME_DEFAULT_DAGS        "./dags"
#define HOME_DEFAULT_LISTEN      "127.0.0.1:8080"
#define HOME_DEFAULT_PARALLELISM 32
#define HOME_PARALLELISM_MAX     100000
#define HOME_CONFIG_MAX          (1024 * 1024)

struct home_pool {
    char *name; /* owned */
    int slots;  /* >= 1 */
};

struct home_auth {
    int64_t token_ttl_ms; /* default 1h */
    char *issuer;         /* owned; default "baram" */
    char *audience;       /* owned; default "baram" */
    char *public_key;     /* owned: path of a PEM public key (RS256/ES256), or NULL */
};

/* The API server (api.h): its share of the machine. */
struct home_api {
    int max_rps;      /* requests started per second at most; 0: no limit (default) */
    int threads;      /* threads serving connections; default 2 */
    char *public_url; /* owned: where people reach the UI (links in notifications), or NULL */
};

#define HOME_API_MAX_RPS_MAX 1000000
#define HOME_API_THREADS_MAX 64

/* http tasks and waits (SPEC sections 4 and 7). */
#define HOME_HTTP_MAX_PER_HOST     16 /* requests in flight per host */
#define HOME_HTTP_MAX_PER_HOST_MAX 100000

struct home {
    char *dir;                /* owned: the home folder as chosen (not made absolute) */
    bool from_flag;           /* chosen by a --home flag (messages then repeat it) */
    char *config_path;        /* owned: DIR/baram.yaml */
    char *dags;               /* owned: DAG folder; default ./dags */
    char *db;                 /* owned: store url; default DIR/baram.db */
    char *listen;             /* owned: host:port; default 127.0.0.1:8080 */
    int parallelism;          /* default 32 */
    enum log_level log_level; /* default warn for the CLI (info for daemons) */
    bool log_level_set;       /* given by baram.yaml or BARAM_LOG_LEVEL */
    struct home_pool *pools;  /* owned */
    size_t npools;
    struct home_auth auth;
    struct home_api api;
    int http_max_per_host; /* requests in flight per host; default 16 */
    /* scheduler.heartbeat / scheduler.dead_after (SPEC section 12); 0: the defaults */
    int64_t sched_heartbeat_ms;
    int64_t sched_dead_after_ms;
    /* worker.heartbeat / worker.dead_after (SPEC section 12); 0: the defaults */
    int64_t worker_heartbeat_ms;
    int64_t worker_dead_after_ms;
    /* logs.store_max: bytes of an ended try's log kept in the store (SPEC section 12); 0: the
     * default */
    int64_t logs_store_max;
    /* versions part (issue 13): retention (SPEC section 13); 0: not set (kept forever) */
    struct home_retention {
        int64_t runs_ms;  /* retention.runs: finished runs older than this are deleted */
        int64_t logs_ms;  /* retention.logs: only their log files (and stored logs) go */
        int64_t every_ms; /* retention.every: how often the scheduler applies it; 0: 1h */
    } retention;
    /* tz: `timezone:` (BARAM_TIMEZONE), the zone of DAGs that set none; NULL: UTC */
    const struct tz *tz;
    /* notify: `notifiers` (SPEC section 13), file order */
    struct notifier *notifiers; /* owned */
    size_t nnotifiers;
};

#define HOME_RETENTION_EVERY_MS (3600LL * 1000)

#define HOME_WORKER_HEARTBEAT_MS  5000
#define HOME_WORKER_DEAD_AFTER_MS 20000
#define HOME_LOGS_STORE_MAX       (8LL * 1024 * 1024)

/* worker.heartbeat, worker.dead_after and logs.store_max, the defaults when not set. */
int64_t home_worker_heartbeat_ms(const struct home *h);
int64_t home_worker_dead_after_ms(const struct home *h);
int64_t home_logs_store_max(const struct home *h);

/* scheduler.dead_after in ms, the default when not set. */
int64_t home_dead_after_ms(const struct home *h);

/* api.max_rps / api.threads values as the config, environment and flags take them: 0, or
 * -EINVAL when out of range or not a whole number. */
int home_parse_api_max_rps(const char *s, int *out) WARN_UNUSED;
int home_parse_api_threads(const char *s, int *out) WARN_UNUSED;
/* The --api-max-rps / --api-threads flags of `standalone` and `api` (NULL: not given): 0, or
 * -EINVAL after a message on stderr naming cmd. */
int home_apply_api_flags(struct home *h, const char *cmd, const char *max_rps,
                         const char *threads) WARN_UNUSED;

/* Records the global --home given before the command name (`baram --home D run ...`); a
 * command's own --home wins over it. The string is borrowed (argv). */
void home_set_global_flag(const char *dir);

/* Fills h with defaults for the home chosen from flag (may be NULL), the global flag,
 * BARAM_HOME, or ./.baram. Never fails. */
void home_init(struct home *h, const char *flag);
void home_release(struct home *h);
/* The home's `pools` as the scheduler and the API take them: h->npools entries (names borrowed
 * from h, so h must outlive them), malloc'd. */
struct run_pool;
struct run_pool *home_run_pools(const struct home *h);

/* Parses baram.yaml text onto h (keys present replace defaults). 0, or -EINVAL with every
 * problem added to d. path names the text in messages. */
int home_parse_config(struct home *h, const char *text, size_t len, const char *path,
                      struct diag *d) WARN_UNUSED;
/* Applies the BARAM_<KEY> environment overrides. 0 or -EINVAL with entries in d. */
int home_apply_env(struct home *h, struct diag *d) WARN_UNUSED;

/* home_init + reading h->config_path when it exists + home_apply_env. 0 or -EINVAL with
 * entries in d (an unreadable config file is one entry). */
int home_load(struct home *h, const char *flag, struct diag *d) WARN_UNUSED;

/* Creates the home folder (mode 0700; parents as needed) and its logs/ folder if missing.
 * 0, or a negative errno with *e filled for a person. */
int home_create(const struct home *h, struct err *e) WARN_UNUSED;

/* Opens the store. With create false, a database that holds no store yet (no SQLite file; a
 * PostgreSQL database without baram's tables) is an error (-ENOENT, "no database ...") rather
 * than an empty new one (store_open_existing). 0 and *out, or a negative code with *e filled
 * (store_open's words). */
int home_open_store(const struct home *h, bool create, struct store **out,
                    struct err *e) WARN_UNUSED;

/* Opens the token keys of the home (its secret.key, and auth.* of its config), as the API
 * checks them (api/auth.h): 0 and *out, or a negative code with *e filled. */
struct auth;
int home_open_auth(const struct home *h, struct auth **out, struct err *e) WARN_UNUSED;

/* For commands: loads the configuration, prints problems to stderr as "baram CMD: ..." or
 * GCC-style diagnostics, sets the log level. 0, or -EINVAL (exit 2). */
int home_setup(struct home *h, const char *cmd, const char *flag) WARN_UNUSED;
/* home_setup, then the home's existing store (never created): EXIT_OK and *s, or the exit code
 * (EXIT_USAGE: bad configuration or no database yet; EXIT_FAILED) after "baram CMD: ..." on
 * stderr, h released. */
int home_setup_store(struct home *h, const char *cmd, const char *flag,
                     struct store **s) WARN_UNUSED;

#endif

/*
 * home.c - choosing the home, reading baram.yaml, environment overrides;
 * see home.h. The config is small, so it is loaded as one libyaml document
 * and walked node by node; every node carries its position (libyaml marks
 * are 0-based: this file adds 1). Each problem is a diag entry and parsing
 * goes on, so one pass reports them all. Main thread only.
 */
#include "cli/home.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "api/auth.h"
#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/suggest.h"
#include "base/tz.h"
#include "base/xalloc.h"
#include "cli/cli.h"
#include "daemon/daemon.h"
#include "dag/dag.h"
#include "dag/duration.h"
#include "exec/notify.h"
#include "ops/dagdir.h"
#include "sched/run.h"
#include "store/store.h"

static const char *global_flag; /* borrowed from argv; written by cli_main before commands */

void home_set_global_flag(const char *dir)
{
    global_flag = dir;
}

static char *join(const char *dir, const char *name)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    size_t n = strlen(dir);
    (void)!buf_adds(&b, dir);
    if (n && dir[n - 1] != '/')
        (void)!buf_addc(&b, '/');
    (void)!buf_adds(&b, name);
    return buf_detach(&b, NULL);
}

void home_init(struct home *h, const char *flag)
{
    memset(h, 0, sizeof *h);
    const char *dir = flag;
    if (!dir || !*dir)
        dir = global_flag;
    h->from_flag = dir && *dir;
    if (!dir || !*dir)
        dir = getenv("BARAM_HOME");
    if (!dir || !*dir)
        dir = HOME_DEFAULT_DIR;
    h->dir = xstrdup(dir);
    h->config_path = join(dir, "baram.yaml");
    h->dags = xstrdup(HOME_DEFAULT_DAGS);
    h->db = join(dir, "baram.db");
    h->listen = xstrdup(HOME_DEFAULT_LISTEN);
    h->parallelism = HOME_DEFAULT_PARALLELISM;
    h->http_max_per_host = HOME_HTTP_MAX_PER_HOST;
    h->log_level = LOG_WARN;
    h->auth.token_ttl_ms = 3600 * 1000;
    h->auth.issuer = xstrdup("baram");
    h->auth.audience = xstrdup("baram");
    h->api.max_rps = 0;
    h->api.threads = 2;
}

static void free_pools(struct home *h)
{
    for (size_t i = 0; i < h->npools; i++)
        free(h->pools[i].name);
    free(h->pools);
    h->pools = NULL;
    h->npools = 0;
}

struct run_pool *home_run_pools(const struct home *h)
{
    struct run_pool *v = xcalloc(h->npools ? h->npools : 1, sizeof *v);
    for (size_t i = 0; i < h->npools; i++) {
        v[i].name = h->pools[i].name;
        v[i].slots = h->pools[i].slots;
    }
    return v;
}

void home_release(struct home *h)
{
    free(h->dir);
    free(h->config_path);
    free(h->dags);
    free(h->db);
    free(h->listen);
    free_pools(h);
    notifiers_free(h->notifiers, h->nnotifiers);
    h->notifiers = NULL;
    h->nnotifiers = 0;
    free(h->api.public_url);
    free(h->auth.issuer);
    free(h->auth.audience);
    free(h->auth.public_key);
    memset(h, 0, sizeof *h);
}

/* ---- value checks shared by the file and the environment ---- */

static void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = xstrdup(v);
}

/* host:port, port 1..65535; host may be empty ("":8080 = all interfaces) or [v6]. */
static bool listen_ok(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon)
        return false;
    int port;
    if (parse_int(colon + 1, 1, 65535, &port) < 0)
        return false;
    return colon[1] != '+' && colon[1] != '-';
}

static const char *const config_keys[] = {
    "dags",      "db",        "listen", "parallelism", "pools",     "auth",     "api",      "http",
    "log_level", "scheduler", "worker", "logs",        "retention", "timezone", "notifiers"};
static const char *const retention_keys[] = {"runs", "logs", "every"};
static const char *const scheduler_keys[] = {"heartbeat", "dead_after"};
static const char *const logs_keys[] = {"store_max"};
static const char *const api_keys[] = {"max_rps", "threads", "public_url"};
static const char *const http_keys[] = {"max_per_host"};

#define HOME_HTTP_MAX_PER_HOST_BAD "bad 'http.max_per_host' '%s' (a whole number from 1 to %d)"

static int parse_http_max_per_host(const char *s, int *out)
{
    return parse_int(s, 1, HOME_HTTP_MAX_PER_HOST_MAX, out);
}
static const char *const auth_keys[] = {"token_ttl", "issuer", "audience", "public_key"};
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

/* ---- the YAML file ---- */

struct cfg {
    yaml_document_t *doc;
    const char *path;
    struct diag *d;
};

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static int col_of(const yaml_node_t *n)
{
    return (int)n->start_mark.column + 1;
}

static const char *kind_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

/* The scalar's text, or NULL after an error when n is not a scalar. */
static const char *scalar(struct cfg *c, const yaml_node_t *n, const char *key)
{
    if (n->type != YAML_SCALAR_NODE) {
        diag_err(c->d, c->path, line_of(n), col_of(n), "'%s' must be a scalar, not %s", key,
                 kind_name(n));
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static void unknown_key(struct cfg *c, const yaml_node_t *k, const char *name,
                        const char *const *known, size_t nknown, const char *where)
{
    diag_err(c->d, c->path, line_of(k), col_of(k), "unknown key '%s'%s", name, where);
    const char *near = suggest_closest(name, known, nknown);
    if (near)
        diag_hint(c->d, "did you mean '%s'?", near);
}

static void parse_pools(struct cfg *c, struct home *h, yaml_node_t *v)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v),
                 "'pools' must be a mapping of pool names to slot counts, not %s", kind_name(v));
        return;
    }
    free_pools(h);
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    h->pools = xcalloc(n ? n : 1, sizeof *h->pools);
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, "pools");
        if (!name)
            continue;
        if (!*name) {
            diag_err(c->d, c->path, line_of(k), col_of(k), "empty pool name");
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < h->npools; i++)
            dup |= strcmp(h->pools[i].name, name) == 0;
        if (dup) {
            diag_err(c->d, c->path, line_of(k), col_of(k), "duplicate pool '%s'", name);
            continue;
        }
        char key[256];
        snprintf(key, sizeof key, "pools.%s", name);
        const char *s = scalar(c, val, key);
        int slots;
        if (!s)
            continue;
        if (parse_int(s, 1, HOME_PARALLELISM_MAX, &slots) < 0) {
            diag_err(c->d, c->path, line_of(val), col_of(val),
                     "bad slot count '%s' for pool '%s' (a whole number from 1 to %d)", s, name,
                     HOME_PARALLELISM_MAX);
            continue;
        }
        h->pools[h->npools].name = xstrdup(name);
        h->pools[h->npools].slots = slots;
        h->npools++;
    }
}

static void parse_auth(struct cfg *c, struct home *h, yaml_node_t *v)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v), "'auth' must be a mapping, not %s",
                 kind_name(v));
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, "auth");
        if (!name)
            continue;
        char key[64];
        snprintf(key, sizeof key, "auth.%.50s", name);
        if (strcmp(name, "token_ttl") == 0) {
            const char *s = scalar(c, val, key);
            int64_t ms;
            if (s && (duration_parse(s, &ms) < 0 || ms <= 0))
                diag_err(c->d, c->path, line_of(val), col_of(val),
                         "bad duration '%s' for 'auth.token_ttl'", s);
            else if (s)
                h->auth.token_ttl_ms = ms;
        } else if (strcmp(name, "issuer") == 0 || strcmp(name, "audience") == 0 ||
                   strcmp(name, "public_key") == 0) {
            const char *s = scalar(c, val, key);
            if (!s)
                continue;
            if (!*s) {
                diag_err(c->d, c->path, line_of(val), col_of(val), "'%s' must not be empty", key);
                continue;
            }
            char **slot = name[0] == 'i'   ? &h->auth.issuer
                          : name[0] == 'a' ? &h->auth.audience
                                           : &h->auth.public_key;
            set_str(slot, s);
        } else {
            unknown_key(c, k, name, auth_keys, ARRAY_SIZE(auth_keys), " in 'auth'");
        }
    }
}

static void parse_api(struct cfg *c, struct home *h, yaml_node_t *v)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v), "'api' must be a mapping, not %s",
                 kind_name(v));
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, "api");
        if (!name)
            continue;
        if (strcmp(name, "public_url") == 0) { /* notify: links in messages */
            const char *u = scalar(c, val, "api.public_url");
            if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                diag_err(c->d, c->path, line_of(val), col_of(val),
                         "bad 'api.public_url' '%s' (http:// or https://)", u);
            else if (u)
                set_str(&h->api.public_url, u);
            continue;
        }
        bool rps = strcmp(name, "max_rps") == 0;
        if (!rps && strcmp(name, "threads") != 0) {
            unknown_key(c, k, name, api_keys, ARRAY_SIZE(api_keys), " in 'api'");
            continue;
        }
        const char *s = scalar(c, val, rps ? "api.max_rps" : "api.threads");
        int n;
        if (!s)
            continue;
        if (rps ? home_parse_api_max_rps(s, &n) == 0 : home_parse_api_threads(s, &n) == 0)
            *(rps ? &h->api.max_rps : &h->api.threads) = n;
        else if (rps)
            diag_err(c->d, c->path, line_of(val), col_of(val),
                     "bad 'api.max_rps' '%s' (requests a second, 0 to %d; 0: no limit)", s,
                     HOME_API_MAX_RPS_MAX);
        else
            diag_err(c->d, c->path, line_of(val), col_of(val),
                     "bad 'api.threads' '%s' (a whole number from 1 to %d)", s,
                     HOME_API_THREADS_MAX);
    }
}

static void parse_http(struct cfg *c, struct home *h, yaml_node_t *v)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v), "'http' must be a mapping, not %s",
                 kind_name(v));
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, "http");
        if (!name)
            continue;
        if (strcmp(name, "max_per_host") != 0) {
            unknown_key(c, k, name, http_keys, ARRAY_SIZE(http_keys), " in 'http'");
            continue;
        }
        const char *s = scalar(c, val, "http.max_per_host");
        if (s && parse_http_max_per_host(s, &h->http_max_per_host) < 0)
            diag_err(c->d, c->path, line_of(val), col_of(val), HOME_HTTP_MAX_PER_HOST_BAD, s,
                     HOME_HTTP_MAX_PER_HOST_MAX);
    }
}

/* A scheduler.heartbeat or scheduler.dead_after value: 0 and *ms, or -EINVAL. */
static int parse_sched_duration(const char *s, int64_t *ms)
{
    int64_t v;
    if (duration_parse(s, &v) < 0 || v < 100 || v > 24LL * 3600 * 1000)
        return -EINVAL;
    *ms = v;
    return 0;
}

#define HOME_SCHED_BAD "bad '%s' '%s' (a duration from 100ms to 24h, like 5s)"

/* scheduler: or worker: (SPEC section 12): heartbeat and dead_after. */
static void parse_beats(struct cfg *c, const char *section, yaml_node_t *v, int64_t *beat_ms,
                        int64_t *dead_ms)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v), "'%s' must be a mapping, not %s", section,
                 kind_name(v));
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, section);
        if (!name)
            continue;
        bool beat = strcmp(name, "heartbeat") == 0;
        if (!beat && strcmp(name, "dead_after") != 0) {
            char where[32];
            snprintf(where, sizeof where, " in '%s'", section);
            unknown_key(c, k, name, scheduler_keys, ARRAY_SIZE(scheduler_keys), where);
            continue;
        }
        char key[32];
        snprintf(key, sizeof key, "%s.%s", section, beat ? "heartbeat" : "dead_after");
        const char *s = scalar(c, val, key);
        if (s && parse_sched_duration(s, beat ? beat_ms : dead_ms) < 0)
            diag_err(c->d, c->path, line_of(val), col_of(val), HOME_SCHED_BAD, key, s);
    }
}

#define HOME_LOGS_STORE_MAX_BAD "bad 'logs.store_max' '%s' (a size from 1KiB to 1GiB, like 8MiB)"

/* A size: a whole number of bytes with an optional KiB, MiB or GiB (or K, M, G). */
static int parse_store_max(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -EINVAL;
    int64_t mul = 1;
    if (strcmp(end, "KiB") == 0 || strcmp(end, "K") == 0)
        mul = 1024;
    else if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0)
        mul = 1024 * 1024;
    else if (strcmp(end, "GiB") == 0 || strcmp(end, "G") == 0)
        mul = 1024 * 1024 * 1024;
    else if (*end)
        return -EINVAL;
    if (v > (1LL << 30) / mul || v * mul < 1024)
        return -EINVAL;
    *out = v * mul;
    return 0;
}

static void parse_logs(struct cfg *c, struct home *h, yaml_node_t *v)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v), "'logs' must be a mapping, not %s",
                 kind_name(v));
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, "logs");
        if (!name)
            continue;
        if (strcmp(name, "store_max") != 0) {
            unknown_key(c, k, name, logs_keys, ARRAY_SIZE(logs_keys), " in 'logs'");
            continue;
        }
        const char *s = scalar(c, val, "logs.store_max");
        if (s && parse_store_max(s, &h->logs_store_max) < 0)
            diag_err(c->d, c->path, line_of(val), col_of(val), HOME_LOGS_STORE_MAX_BAD, s);
    }
}

/* retention: {runs: 90d, logs: 30d, every: 1h}, each a duration above 0. */
static void parse_retention(struct cfg *c, struct home *h, yaml_node_t *v)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v), "'retention' must be a mapping, not %s",
                 kind_name(v));
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, "retention");
        if (!name)
            continue;
        int64_t *slot = strcmp(name, "runs") == 0    ? &h->retention.runs_ms
                        : strcmp(name, "logs") == 0  ? &h->retention.logs_ms
                        : strcmp(name, "every") == 0 ? &h->retention.every_ms
                                                     : NULL;
        if (!slot) {
            unknown_key(c, k, name, retention_keys, ARRAY_SIZE(retention_keys), " in 'retention'");
            continue;
        }
        char key[32];
        snprintf(key, sizeof key, "retention.%s", name);
        const char *s = scalar(c, val, key);
        int64_t ms;
        if (s && (duration_parse(s, &ms) < 0 || ms <= 0))
            diag_err(c->d, c->path, line_of(val), col_of(val),
                     "bad duration '%s' for '%s' (like 90d, 12h or 30m)", s, key);
        else if (s)
            *slot = ms;
    }
}

/* ---- notify: `notifiers` ---- */

static const char *const notifier_keys[] = {"webhook", "slack",   "smtp",   "from",
                                            "to",      "timeout", "retries"};

static bool url_scheme_ok(const char *url, const char *const *schemes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(schemes[i]);
        if (strncmp(url, schemes[i], k) == 0 && url[k] && !strpbrk(url, " \t\r\n"))
            return true;
    }
    return false;
}

/* A mail address as MAIL FROM / RCPT TO take it: local@domain, nothing that breaks a line
 * or the <> around it. */
static bool mail_addr_ok(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s && at[1] && !strpbrk(s, " <>\r\n\t\"") && strlen(s) <= 254;
}

/* A notifier's name: what DAG hooks write in `{notify: NAME}` (letters, digits, _ . -). */
static bool notifier_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* One notifier's mapping into n; false after reporting a problem. */
static bool parse_notifier(struct cfg *c, const char *name, yaml_node_t *v, struct notifier *n)
{
    char key[128];
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v), "notifier '%s' must be a mapping, not %s",
                 name, kind_name(v));
        return false;
    }
    size_t errors = c->d->errors;
    int kinds = 0;
    yaml_node_t *to = NULL;
    n->timeout_ms = NOTIFIER_TIMEOUT_MS;
    n->retries = NOTIFIER_RETRIES;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        snprintf(key, sizeof key, "notifiers.%.60s", name);
        const char *kn = scalar(c, k, key);
        if (!kn)
            continue;
        snprintf(key, sizeof key, "notifiers.%.60s.%.40s", name, kn);
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(notifier_keys); i++)
            known |= strcmp(notifier_keys[i], kn) == 0;
        if (!known) {
            char where[96];
            snprintf(where, sizeof where, " in notifier '%.60s'", name);
            unknown_key(c, k, kn, notifier_keys, ARRAY_SIZE(notifier_keys), where);
            continue;
        }
        if (strcmp(kn, "to") == 0) {
            to = val;
            continue;
        }
        const char *s = scalar(c, val, key);
        if (!s)
            continue;
        int l = line_of(val), col = col_of(val);
        if (strcmp(kn, "webhook") == 0 || strcmp(kn, "slack") == 0) {
            static const char *const http[] = {"http://", "https://"};
            kinds++;
            n->kind = kn[0] == 'w' ? NOTIFIER_WEBHOOK : NOTIFIER_SLACK;
            if (!url_scheme_ok(s, http, ARRAY_SIZE(http)))
                diag_err(c->d, c->path, l, col, "bad URL '%s' for '%s' (http:// or https://)", s,
                         key);
            else
                set_str(&n->url, s);
        } else if (strcmp(kn, "smtp") == 0) {
            static const char *const smtp[] = {"smtp://", "smtps://"};
            kinds++;
            n->kind = NOTIFIER_MAIL;
            if (!url_scheme_ok(s, smtp, ARRAY_SIZE(smtp)))
                diag_err(c->d, c->path, l, col, "bad URL '%s' for '%s' (smtp:// or smtps://)", s,
                         key);
            else
                set_str(&n->url, s);
        } else if (strcmp(kn, "from") == 0) {
            if (!mail_addr_ok(s))
                diag_err(c->d, c->path, l, col, "bad mail address '%s' for '%s'", s, key);
            else
                set_str(&n->from, s);
        } else if (strcmp(kn, "timeout") == 0) {
            int64_t ms;
            if (duration_parse(s, &ms) < 0 || ms <= 0 || ms > 3600 * 1000)
                diag_err(c->d, c->path, l, col,
                         "bad duration '%s' for '%s' (more than 0, at most 1h)", s, key);
            else
                n->timeout_ms = ms;
        } else {
            if (parse_int(s, 0, NOTIFIER_RETRIES_MAX, &n->retries) < 0)
                diag_err(c->d, c->path, l, col, "bad '%s' '%s' (a whole number from 0 to %d)", key,
                         s, NOTIFIER_RETRIES_MAX);
        }
    }
    if (kinds != 1) {
        diag_err(c->d, c->path, line_of(v), col_of(v),
                 kinds ? "notifier '%s' has more than one of 'webhook', 'slack', 'smtp'"
                       : "notifier '%s' has none of 'webhook', 'slack', 'smtp'",
                 name);
        return false;
    }
    snprintf(key, sizeof key, "notifiers.%.60s.to", name);
    if (n->kind == NOTIFIER_MAIL) {
        if (!n->from && c->d->errors == errors)
            diag_err(c->d, c->path, line_of(v), col_of(v), "mail notifier '%s' needs 'from'", name);
        if (!to) {
            diag_err(c->d, c->path, line_of(v), col_of(v), "mail notifier '%s' needs 'to'", name);
        } else if (to->type == YAML_SCALAR_NODE || to->type == YAML_SEQUENCE_NODE) {
            yaml_node_item_t *i0 =
                to->type == YAML_SEQUENCE_NODE ? to->data.sequence.items.start : NULL;
            size_t nt = i0 ? (size_t)(to->data.sequence.items.top - i0) : 1;
            if (nt == 0)
                diag_err(c->d, c->path, line_of(to), col_of(to), "'%s' must not be empty", key);
            n->to = xcalloc(nt ? nt : 1, sizeof(char *));
            for (size_t i = 0; i < nt; i++) {
                yaml_node_t *it = i0 ? yaml_document_get_node(c->doc, i0[i]) : to;
                const char *s = scalar(c, it, key);
                if (!s)
                    continue;
                if (!mail_addr_ok(s)) {
                    diag_err(c->d, c->path, line_of(it), col_of(it),
                             "bad mail address '%s' for '%s'", s, key);
                    continue;
                }
                n->to[n->nto++] = xstrdup(s);
            }
        } else {
            diag_err(c->d, c->path, line_of(to), col_of(to),
                     "'%s' must be an address or a list of them, not %s", key, kind_name(to));
        }
    } else if (n->from || to) {
        diag_err(c->d, c->path, line_of(v), col_of(v),
                 "'from' and 'to' are for mail notifiers ('smtp'), not '%s'",
                 notifier_kind_name(n->kind));
    }
    return c->d->errors == errors;
}

static void parse_notifiers(struct cfg *c, struct home *h, yaml_node_t *v)
{
    if (v->type != YAML_MAPPING_NODE) {
        diag_err(c->d, c->path, line_of(v), col_of(v),
                 "'notifiers' must be a mapping of names to notifiers, not %s", kind_name(v));
        return;
    }
    notifiers_free(h->notifiers, h->nnotifiers);
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    h->notifiers = xcalloc(n ? n : 1, sizeof *h->notifiers);
    h->nnotifiers = 0;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(c, k, "notifiers");
        if (!name)
            continue;
        if (!notifier_name_ok(name)) {
            diag_err(c->d, c->path, line_of(k), col_of(k), "bad notifier name '%s'", name);
            diag_hint(c->d, "use letters, digits, '_', '.' and '-'");
            continue;
        }
        if (notifiers_find(h->notifiers, h->nnotifiers, name)) {
            diag_err(c->d, c->path, line_of(k), col_of(k), "duplicate notifier '%s'", name);
            continue;
        }
        struct notifier *nt = &h->notifiers[h->nnotifiers];
        memset(nt, 0, sizeof *nt);
        if (!parse_notifier(c, name, val, nt)) {
            notifier_release(nt);
            continue;
        }
        nt->name = xstrdup(name);
        h->nnotifiers++;
    }
}

static void parse_key(struct cfg *c, struct home *h, yaml_node_t *k, const char *name,
                      yaml_node_t *v)
{
    if (strcmp(name, "retention") == 0) {
        parse_retention(c, h, v);
        return;
    }
    if (strcmp(name, "scheduler") == 0) {
        parse_beats(c, "scheduler", v, &h->sched_heartbeat_ms, &h->sched_dead_after_ms);
        return;
    }
    if (strcmp(name, "worker") == 0) {
        parse_beats(c, "worker", v, &h->worker_heartbeat_ms, &h->worker_dead_after_ms);
        return;
    }
    if (strcmp(name, "logs") == 0) {
        parse_logs(c, h, v);
        return;
    }
    if (strcmp(name, "http") == 0) {
        parse_http(c, h, v);
        return;
    }
    if (strcmp(name, "api") == 0) {
        parse_api(c, h, v);
        return;
    }
    if (strcmp(name, "pools") == 0) {
        parse_pools(c, h, v);
        return;
    }
    if (strcmp(name, "notifiers") == 0) {
        parse_notifiers(c, h, v);
        return;
    }
    if (strcmp(name, "auth") == 0) {
        parse_auth(c, h, v);
        return;
    }
    bool known = false;
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
        known |= strcmp(config_keys[i], name) == 0;
    if (!known) {
        unknown_key(c, k, name, config_keys, ARRAY_SIZE(config_keys), "");
        return;
    }
    const char *s = scalar(c, v, name);
    if (!s)
        return;
    int l = line_of(v), col = col_of(v);
    if (strcmp(name, "parallelism") == 0) {
        int n;
        if (parse_int(s, 1, HOME_PARALLELISM_MAX, &n) < 0)
            diag_err(c->d, c->path, l, col, "bad parallelism '%s' (a whole number from 1 to %d)", s,
                     HOME_PARALLELISM_MAX);
        else
            h->parallelism = n;
    } else if (strcmp(name, "log_level") == 0) {
        enum log_level lv;
        if (log_parse_level(s, &lv) < 0) {
            diag_err(c->d, c->path, l, col, "bad log level '%s'", s);
            const char *near = suggest_closest(s, level_names, ARRAY_SIZE(level_names));
            if (near)
                diag_hint(c->d, "did you mean '%s'?", near);
            else
                diag_hint(c->d, "one of debug, info, warn, error, off");
        } else {
            h->log_level = lv;
            h->log_level_set = true;
        }
    } else if (strcmp(name, "timezone") == 0) {
        (void)tz_get_diag(s, &h->tz, c->d, c->path, l, col);
    } else if (strcmp(name, "listen") == 0) {
        if (!listen_ok(s))
            diag_err(c->d, c->path, l, col, "bad listen address '%s' (expected HOST:PORT)", s);
        else
            set_str(&h->listen, s);
    } else if (!*s) {
        diag_err(c->d, c->path, l, col, "'%s' must not be empty", name);
    } else if (strcmp(name, "dags") == 0) {
        set_str(&h->dags, s);
    } else {
        set_str(&h->db, s);
    }
}

int home_parse_config(struct home *h, const char *text, size_t len, const char *path,
                      struct diag *d)
{
    size_t errors = d->errors;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return diag_err(d, path, 0, 0, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int line = (int)parser.problem_mark.line + 1, col = (int)parser.problem_mark.column + 1;
        diag_err(d, path, line, col, "malformed YAML: %s",
                 parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    struct cfg c = {&doc, path, d};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        /* An empty file: all defaults. */
    } else if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0) {
        /* "---" alone or only comments. */
    } else if (root->type != YAML_MAPPING_NODE) {
        diag_err(d, path, line_of(root), col_of(root), "the config must be a mapping, not %s",
                 kind_name(root));
    } else {
        const yaml_node_pair_t *start = root->data.mapping.pairs.start;
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(&doc, p->key);
            yaml_node_t *v = yaml_document_get_node(&doc, p->value);
            const char *name = scalar(&c, k, "key");
            if (!name)
                continue;
            bool dup = false;
            for (const yaml_node_pair_t *q = start; q < p; q++) {
                yaml_node_t *qk = yaml_document_get_node(&doc, q->key);
                dup |= qk->type == YAML_SCALAR_NODE &&
                       strcmp((const char *)qk->data.scalar.value, name) == 0;
            }
            if (dup) {
                diag_err(d, path, line_of(k), col_of(k), "duplicate key '%s'", name);
                continue;
            }
            parse_key(&c, h, k, name, v);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return d->errors > errors ? -EINVAL : 0;
}

int home_parse_api_max_rps(const char *s, int *out)
{
    return parse_int(s, 0, HOME_API_MAX_RPS_MAX, out);
}

int home_parse_api_threads(const char *s, int *out)
{
    return parse_int(s, 1, HOME_API_THREADS_MAX, out);
}

int home_apply_api_flags(struct home *h, const char *cmd, const char *max_rps, const char *threads)
{
    int n;
    if (max_rps) {
        if (home_parse_api_max_rps(max_rps, &n) < 0) {
            fprintf(stderr,
                    "baram %s: bad --api-max-rps '%s' (requests a second, 0 to %d; 0: "
                    "no limit)\n",
                    cmd, max_rps, HOME_API_MAX_RPS_MAX);
            return -EINVAL;
        }
        h->api.max_rps = n;
    }
    if (threads) {
        if (home_parse_api_threads(threads, &n) < 0) {
            fprintf(stderr, "baram %s: bad --api-threads '%s' (a whole number from 1 to %d)\n", cmd,
                    threads, HOME_API_THREADS_MAX);
            return -EINVAL;
        }
        h->api.threads = n;
    }
    return 0;
}

int home_apply_env(struct home *h, struct diag *d)
{
    size_t errors = d->errors;
    const char *v;
    if ((v = getenv("BARAM_DAGS")) && *v)
        set_str(&h->dags, v);
    if ((v = getenv("BARAM_DB")) && *v)
        set_str(&h->db, v);
    if ((v = getenv("BARAM_LISTEN")) && *v) {
        if (listen_ok(v))
            set_str(&h->listen, v);
        else
            diag_err(d, "BARAM_LISTEN", 0, 0, "bad listen address '%s' (expected HOST:PORT)", v);
    }
    if ((v = getenv("BARAM_PARALLELISM")) && *v) {
        int n;
        if (parse_int(v, 1, HOME_PARALLELISM_MAX, &n) < 0)
            diag_err(d, "BARAM_PARALLELISM", 0, 0,
                     "bad parallelism '%s' (a whole number from 1 to %d)", v, HOME_PARALLELISM_MAX);
        else
            h->parallelism = n;
    }
    if ((v = getenv("BARAM_API_MAX_RPS")) && *v) {
        int n;
        if (home_parse_api_max_rps(v, &n) < 0)
            diag_err(d, "BARAM_API_MAX_RPS", 0, 0,
                     "bad requests a second '%s' (0 to %d; 0: no limit)", v, HOME_API_MAX_RPS_MAX);
        else
            h->api.max_rps = n;
    }
    if ((v = getenv("BARAM_API_THREADS")) && *v) {
        int n;
        if (home_parse_api_threads(v, &n) < 0)
            diag_err(d, "BARAM_API_THREADS", 0, 0, "bad thread count '%s' (1 to %d)", v,
                     HOME_API_THREADS_MAX);
        else
            h->api.threads = n;
    }
    if ((v = getenv("BARAM_HTTP_MAX_PER_HOST")) && *v &&
        parse_http_max_per_host(v, &h->http_max_per_host) < 0)
        diag_err(d, "BARAM_HTTP_MAX_PER_HOST", 0, 0, HOME_HTTP_MAX_PER_HOST_BAD, v,
                 HOME_HTTP_MAX_PER_HOST_MAX);
    if ((v = getenv("BARAM_SCHEDULER_HEARTBEAT")) && *v &&
        parse_sched_duration(v, &h->sched_heartbeat_ms) < 0)
        diag_err(d, "BARAM_SCHEDULER_HEARTBEAT", 0, 0, HOME_SCHED_BAD, "scheduler.heartbeat", v);
    if ((v = getenv("BARAM_SCHEDULER_DEAD_AFTER")) && *v &&
        parse_sched_duration(v, &h->sched_dead_after_ms) < 0)
        diag_err(d, "BARAM_SCHEDULER_DEAD_AFTER", 0, 0, HOME_SCHED_BAD, "scheduler.dead_after", v);
    if ((v = getenv("BARAM_WORKER_HEARTBEAT")) && *v &&
        parse_sched_duration(v, &h->worker_heartbeat_ms) < 0)
        diag_err(d, "BARAM_WORKER_HEARTBEAT", 0, 0, HOME_SCHED_BAD, "worker.heartbeat", v);
    if ((v = getenv("BARAM_WORKER_DEAD_AFTER")) && *v &&
        parse_sched_duration(v, &h->worker_dead_after_ms) < 0)
        diag_err(d, "BARAM_WORKER_DEAD_AFTER", 0, 0, HOME_SCHED_BAD, "worker.dead_after", v);
    if ((v = getenv("BARAM_LOGS_STORE_MAX")) && *v && parse_store_max(v, &h->logs_store_max) < 0)
        diag_err(d, "BARAM_LOGS_STORE_MAX", 0, 0, HOME_LOGS_STORE_MAX_BAD, v);
    if ((v = getenv("BARAM_TIMEZONE")) && *v)
        (void)tz_get_diag(v, &h->tz, d, "BARAM_TIMEZONE", 0, 0);
    if ((v = getenv("BARAM_LOG_LEVEL")) && *v) {
        enum log_level lv;
        if (log_parse_level(v, &lv) < 0) {
            diag_err(d, "BARAM_LOG_LEVEL", 0, 0, "bad log level '%s'", v);
            diag_hint(d, "one of debug, info, warn, error, off");
        } else {
            h->log_level = lv;
            h->log_level_set = true;
        }
    }
    return d->errors > errors ? -EINVAL : 0;
}

/* Reads the whole file (at most HOME_CONFIG_MAX bytes): 0 and *text, -ENOENT, or an errno. */
static int read_file(const char *path, char **text, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct buf b = BUF_INIT(HOME_CONFIG_MAX);
    char chunk[8192];
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        if (buf_add(&b, chunk, (size_t)n) < 0) {
            r = -EFBIG;
            break;
        }
    }
    close(fd);
    if (r < 0) {
        buf_release(&b);
        return r;
    }
    *text = buf_detach(&b, len);
    return 0;
}

int home_load(struct home *h, const char *flag, struct diag *d)
{
    home_init(h, flag);
    size_t errors = d->errors;
    char *text;
    size_t len;
    int r = read_file(h->config_path, &text, &len);
    if (r == 0) {
        (void)!home_parse_config(h, text, len, h->config_path, d);
        free(text);
    } else if (r == -EFBIG) {
        diag_err(d, h->config_path, 0, 0, "config file larger than %d bytes", HOME_CONFIG_MAX);
    } else if (r != -ENOENT) {
        diag_err(d, h->config_path, 0, 0, "cannot read the config: %s", strerror(-r));
    }
    (void)!home_apply_env(h, d);
    dag_set_default_tz(h->tz);
    int64_t beat = h->sched_heartbeat_ms ? h->sched_heartbeat_ms : DAEMON_HEARTBEAT_MS;
    int64_t dead = home_dead_after_ms(h);
    if (dead <= beat)
        diag_err(d, h->config_path, 0, 0,
                 "'scheduler.dead_after' (%lld ms) must be longer than 'scheduler.heartbeat' "
                 "(%lld ms)",
                 (long long)dead, (long long)beat);
    if (home_worker_dead_after_ms(h) <= home_worker_heartbeat_ms(h))
        diag_err(d, h->config_path, 0, 0,
                 "'worker.dead_after' (%lld ms) must be longer than 'worker.heartbeat' (%lld ms)",
                 (long long)home_worker_dead_after_ms(h), (long long)home_worker_heartbeat_ms(h));
    return d->errors > errors ? -EINVAL : 0;
}

int64_t home_worker_heartbeat_ms(const struct home *h)
{
    return h->worker_heartbeat_ms ? h->worker_heartbeat_ms : HOME_WORKER_HEARTBEAT_MS;
}

int64_t home_worker_dead_after_ms(const struct home *h)
{
    return h->worker_dead_after_ms ? h->worker_dead_after_ms : HOME_WORKER_DEAD_AFTER_MS;
}

int64_t home_logs_store_max(const struct home *h)
{
    return h->logs_store_max ? h->logs_store_max : HOME_LOGS_STORE_MAX;
}

int64_t home_dead_after_ms(const struct home *h)
{
    return h->sched_dead_after_ms ? h->sched_dead_after_ms : DAEMON_DEAD_AFTER_MS;
}

/* mkdir -p with mode for every folder it creates. */
static int mkdirs(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int r = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            r = -errno;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    if (r == 0) {
        struct stat st;
        if (stat(path, &st) < 0)
            r = -errno;
        else if (!S_ISDIR(st.st_mode))
            r = -ENOTDIR;
    }
    return r;
}

int home_create(const struct home *h, struct err *e)
{
    int r = mkdirs(h->dir, 0700);
    if (r < 0)
        return err_set(e, r, "cannot create the home '%s': %s", h->dir, strerror(-r));
    char *logs = join(h->dir, "logs");
    r = mkdirs(logs, 0700);
    if (r < 0)
        (void)err_set(e, r, "cannot create the log folder '%s': %s", logs, strerror(-r));
    free(logs);
    return r;
}

int home_open_store(const struct home *h, bool create, struct store **out, struct err *e)
{
    return create ? store_open(h->db, out, e) : store_open_existing(h->db, out, e);
}

int home_setup(struct home *h, const char *cmd, const char *flag)
{
    struct diag d;
    diag_init(&d);
    int r = home_load(h, flag, &d);
    if (r < 0) {
        diag_print(&d, stderr, 0);
        fprintf(stderr, "baram %s: unusable configuration\n", cmd);
    }
    diag_release(&d);
    log_set_level(h->log_level);
    if (r == 0)
        dagdir_set_notifiers(h->notifiers, h->nnotifiers);
    return r;
}

int home_setup_store(struct home *h, const char *cmd, const char *flag, struct store **s)
{
    *s = NULL;
    if (home_setup(h, cmd, flag) < 0) {
        home_release(h);
        return EXIT_USAGE;
    }
    struct err err = {0};
    int r = home_open_store(h, false, s, &err);
    if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        home_release(h);
        return r == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
    }
    return EXIT_OK;
}

int home_open_auth(const struct home *h, struct auth **out, struct err *e)
{
    struct auth_opts ao = {
        .home = h->dir,
        .token_ttl_ms = h->auth.token_ttl_ms,
        .issuer = h->auth.issuer,
        .audience = h->auth.audience,
        .public_key = h->auth.public_key,
    };
    return auth_open(&ao, out, e);
}

/*
 * pg_conn.c - connecting to PostgreSQL and turning libpq's failures into
 * baram's errors (pg_int.h). Key idea: the URL is handed to libpq as is
 * (expand_dbname), with baram's defaults added only for what it leaves unset,
 * and parsed once more by PQconninfoParse only to name host and database in
 * messages: the password never reaches a message. Any thread.
 */
#include "store/pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

/* libpq ends its messages with a newline and sometimes spreads them over lines. Copies s into
 * buf as one line. */
static const char *one_line(const char *s, char *buf, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 1 < n; i++) {
        char ch = s[i] == '\n' || s[i] == '\t' ? ' ' : s[i];
        if (ch == ' ' && (j == 0 || buf[j - 1] == ' '))
            continue;
        buf[j++] = ch;
    }
    while (j > 0 && buf[j - 1] == ' ')
        j--;
    buf[j] = 0;
    return buf;
}

/* The value of keyword in opts (a PQconninfoParse answer), NULL when unset or empty. */
static const char *opt_val(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

static void where_of(const PQconninfoOption *opts, char *buf, size_t n)
{
    const char *host = opt_val(opts, "host");
    if (!host)
        host = opt_val(opts, "hostaddr");
    const char *port = opt_val(opts, "port");
    const char *db = opt_val(opts, "dbname");
    if (!db)
        db = opt_val(opts, "user"); /* libpq's default database is the user's name */
    snprintf(buf, n, "PostgreSQL at %s%s%s/%s", host ? host : "localhost", port ? ":" : "",
             port ? port : "", db ? db : "(default database)");
}

void pg__where(const char *url, char *buf, size_t n)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (!opts)
        snprintf(buf, n, "PostgreSQL (an invalid URL)");
    else
        where_of(opts, buf, n);
    PQconninfoFree(opts);
    PQfreemem(msg);
}

/* Server-side bounds of every connection this process opens (pg__set_limits): a session idle
 * inside a transaction is ended, a lock wait gives up, unacknowledged data fails the
 * connection. Written once before any connection is opened, then only read. */
static int64_t limit_idle_tx_ms = 10000, limit_lock_ms = 10000, limit_tcp_ms = 10000;

static int64_t clamp_ms(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void pg__set_limits(int64_t dead_after_ms)
{
    if (dead_after_ms <= 0)
        return;
    /* Well under dead_after: a scheduler frozen inside a batch loses its transaction (and the
     * row lock of its fence) long before the others would declare it dead. */
    limit_idle_tx_ms = clamp_ms(dead_after_ms / 4, 500, 10000);
    limit_lock_ms = clamp_ms(dead_after_ms / 2, 2000, 10000);
    limit_tcp_ms = clamp_ms(dead_after_ms / 2, 1000, 10000);
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("relation already exists, skipping") are not for users */
}

int pg__connect(const char *url, PGconn **out, struct err *e)
{
    *out = NULL;
    const char *lib = pg__lib_error();
    if (lib)
        return err_set(e, ERR_DB, "cannot use a PostgreSQL database: %s (install libpq)", lib);
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (!opts) {
        /* libpq's words about the URL may quote a piece of it: keep them out of the message. */
        PQfreemem(msg);
        return err_set(e, ERR_DB,
                       "cannot use the PostgreSQL URL: libpq cannot parse it (expected "
                       "postgresql://USER:PASSWORD@HOST:PORT/DATABASE?OPTIONS)");
    }
    char where[PG_WHERE_MAX];
    where_of(opts, where, sizeof where);

    const char *keys[16], *vals[16];
    int k = 0;
    keys[k] = "dbname", vals[k++] = url;
    if (!opt_val(opts, "connect_timeout"))
        keys[k] = "connect_timeout", vals[k++] = "5";
    if (!opt_val(opts, "keepalives"))
        keys[k] = "keepalives", vals[k++] = "1";
    if (!opt_val(opts, "keepalives_idle"))
        keys[k] = "keepalives_idle", vals[k++] = "5";
    if (!opt_val(opts, "keepalives_interval"))
        keys[k] = "keepalives_interval", vals[k++] = "2";
    if (!opt_val(opts, "keepalives_count"))
        keys[k] = "keepalives_count", vals[k++] = "3";
    char tcp[24], options[1024];
    if (!opt_val(opts, "tcp_user_timeout")) {
        snprintf(tcp, sizeof tcp, "%" PRId64, limit_tcp_ms);
        keys[k] = "tcp_user_timeout", vals[k++] = tcp;
    }
    /* The URL's own options come last, so a setting of its own wins over baram's. */
    const char *own = opt_val(opts, "options");
    snprintf(options, sizeof options,
             "-c idle_in_transaction_session_timeout=%" PRId64 " -c lock_timeout=%" PRId64 "%s%s",
             limit_idle_tx_ms, limit_lock_ms, own ? " " : "", own ? own : "");
    keys[k] = "options", vals[k++] = options;
    keys[k] = "fallback_application_name", vals[k++] = "baram";
    keys[k] = "client_encoding", vals[k++] = "UTF8";
    keys[k] = NULL, vals[k] = NULL;

    PGconn *c = PQconnectdbParams(keys, vals, 1);
    PQconninfoFree(opts);
    if (!c)
        return err_set(e, ERR_DB, "cannot connect to %s: out of memory", where);
    if (PQstatus(c) != CONNECTION_OK) {
        char line[1024];
        int r = err_set(e, ERR_DB, "cannot connect to %s: %s", where,
                        one_line(PQerrorMessage(c), line, sizeof line));
        PQfinish(c);
        return r;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    *out = c;
    return 0;
}

const char *pg__sqlstate(const PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

int pg__fail(PGconn *c, const PGresult *r, const char *what, struct err *e)
{
    char line[1024];
    if (!c || PQstatus(c) == CONNECTION_BAD)
        return err_set(e, -ECONNRESET, "%s: the connection to PostgreSQL was lost (%s)", what,
                       one_line(c ? PQerrorMessage(c) : "no connection", line, sizeof line));
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!m || !*m)
        m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !*m)
        m = PQerrorMessage(c);
    return err_set(e, ERR_DB, "%s: %s", what, one_line(m, line, sizeof line));
}

int pg__exec(PGconn *c, const char *sql, const char *what, struct err *e)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot %s", what);
        rc = pg__fail(c, r, msg, e);
    }
    PQclear(r);
    return rc;
}

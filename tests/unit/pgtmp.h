/*
 * pgtmp.h - the store's unit tests on either backend.
 *
 * A store test built once runs twice (CMakeLists.txt registers tests/unit/store/ tests a
 * second time, "..._pg", with BARAM_UNIT_DB=pg): on SQLite files in a temporary folder, and
 * on PostgreSQL, where each name a test case opens is a fresh empty database of the cluster
 * whose socket folder is in BARAM_TEST_PG (scripts/pg-cluster starts one; scripts/test-all
 * sets it). Without BARAM_TEST_PG the PostgreSQL run FAILS, never skips: a suite that says
 * green must have run on both.
 *
 * Use: testdb_pg() says which run this is; testdb_url(name) gives the store URL of the case's
 * database called name (a path under the case's folder on SQLite); testdb_int(name, sql) and
 * testdb_exec(name, sql) read and write it on a second connection of their own, for what a
 * test checks behind the store's back; testdb_reset() (in setup) starts a new case and
 * testdb_drop() (in teardown; testdb_teardown is one) drops the case's PostgreSQL databases;
 * testdb_open(name) opens the store on the case's database name. Header-only: each test
 * executable includes it once. Tests link baram_store, whose lazy_pq.c gives libpq.
 */
#ifndef BARAM_TESTS_UNIT_PGTMP_H
#define BARAM_TESTS_UNIT_PGTMP_H

#include <errno.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "store/pg_int.h"
#include "store/store.h"

#define TESTDB_MAX 16

static char testdb_dir[PATH_MAX];                    /* the SQLite run's folder for the case */
static char testdb_names[TESTDB_MAX][64];            /* the case's names ... */
static char testdb_urls[TESTDB_MAX][PATH_MAX + 128]; /* ... and their URLs */
static int testdb_n;
static int testdb_case;

static inline bool testdb_pg(void)
{
    const char *v = getenv("BARAM_UNIT_DB");
    return v && strcmp(v, "pg") == 0;
}

/* The cluster's socket folder; fails the case when unset. */
static inline const char *testdb_socket(void)
{
    const char *dir = getenv("BARAM_TEST_PG");
    if (!dir || !*dir)
        fail_msg("BARAM_TEST_PG is not set: this is the PostgreSQL run of a store test; start a "
                 "cluster (scripts/pg-cluster start DIR) and set BARAM_TEST_PG=DIR, or run "
                 "scripts/test-all");
    return dir;
}

static inline void testdb_quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* "database ... does not exist, skipping" */
}

/* A connection to database db of the cluster (the caller PQfinish()es it). */
static inline PGconn *testdb_connect(const char *db)
{
    char conninfo[PATH_MAX + 128];
    snprintf(conninfo, sizeof conninfo, "host=%s user=postgres dbname=%s connect_timeout=5",
             testdb_socket(), db);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to the test cluster at %s: %s", testdb_socket(),
                 PQerrorMessage(c));
    PQsetNoticeProcessor(c, testdb_quiet, NULL);
    return c;
}

static inline void testdb_pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* Starts a test case: a new folder for SQLite, new database names for PostgreSQL. */
static inline void testdb_reset(const char *tag)
{
    testdb_n = 0;
    testdb_case++;
    snprintf(testdb_dir, sizeof testdb_dir, "/tmp/baram-%s-XXXXXX", tag);
    if (!mkdtemp(testdb_dir))
        fail_msg("mkdtemp: %s", strerror(errno));
}

/* A path under the case's folder (the SQLite run, and files any test needs). */
static inline const char *testdb_path(const char *name)
{
    static char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", testdb_dir, name);
    return p;
}

/* The database name of the case's name on PostgreSQL: u<pid>_<case>_<index>. */
static inline void testdb_pgname(int i, char *buf, size_t n)
{
    snprintf(buf, n, "u%ld_%d_%d", (long)getpid(), testdb_case, i);
}

static inline const char *testdb_url(const char *name)
{
    if (!testdb_pg())
        return testdb_path(name);
    for (int i = 0; i < testdb_n; i++)
        if (strcmp(testdb_names[i], name) == 0)
            return testdb_urls[i];
    if (testdb_n == TESTDB_MAX)
        fail_msg("a test case opened more than %d databases", TESTDB_MAX);
    int i = testdb_n;
    char db[64], sql[128];
    testdb_pgname(i, db, sizeof db);
    PGconn *c = testdb_connect("postgres");
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
    testdb_pg_exec(c, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    testdb_pg_exec(c, sql);
    PQfinish(c);
    snprintf(testdb_names[i], sizeof testdb_names[i], "%s", name);
    snprintf(testdb_urls[i], sizeof testdb_urls[i], "postgresql:///%s?host=%s&user=postgres", db,
             testdb_socket());
    testdb_n++;
    return testdb_urls[i];
}

static inline int testdb_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Ends a test case: its folder and its PostgreSQL databases go. */
static inline void testdb_drop(void)
{
    nftw(testdb_dir, testdb_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (!testdb_pg() || testdb_n == 0)
        return;
    PGconn *c = testdb_connect("postgres");
    for (int i = 0; i < testdb_n; i++) {
        char db[64], sql[128];
        testdb_pgname(i, db, sizeof db);
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        testdb_pg_exec(c, sql);
    }
    PQfinish(c);
    testdb_n = 0;
}

/* A cmocka teardown: testdb_drop(). */
static inline int testdb_teardown(void **state)
{
    (void)state;
    testdb_drop();
    return 0;
}

/* The store of the case's database name, opened (and migrated); fails the case otherwise.
 * The caller store_close()s it. */
static inline struct store *testdb_open(const char *name)
{
    struct store *s = NULL;
    struct err e = {0};
    int r = store_open(testdb_url(name), &s, &e);
    if (r < 0)
        fail_msg("store_open %s: %d %s", name, r, e.msg);
    return s;
}

/* The database name of name on PostgreSQL (after testdb_url(name)). */
static inline const char *testdb_pgdb(const char *name)
{
    static char db[64];
    for (int i = 0; i < testdb_n; i++)
        if (strcmp(testdb_names[i], name) == 0) {
            testdb_pgname(i, db, sizeof db);
            return db;
        }
    fail_msg("no database '%s' in this case", name);
    return NULL;
}

/* How the store's messages name the database of name: its path, or "PostgreSQL at DIR/DB". */
static inline const char *testdb_where(const char *name)
{
    if (!testdb_pg())
        return testdb_path(name);
    static char w[PATH_MAX + 128];
    testdb_url(name);
    snprintf(w, sizeof w, "PostgreSQL at %s/%s", testdb_socket(), testdb_pgdb(name));
    return w;
}

/* A scalar integer query on a second connection of its own (NULL reads as 0). */
static inline long long testdb_int(const char *name, const char *sql)
{
    if (testdb_pg()) {
        testdb_url(name);
        PGconn *c = testdb_connect(testdb_pgdb(name));
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
            fail_msg("%s: %s", sql, PQresultErrorMessage(r));
        long long v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(testdb_path(name), &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs sql on a second connection of its own. */
static inline void testdb_exec(const char *name, const char *sql)
{
    if (testdb_pg()) {
        testdb_url(name);
        PGconn *c = testdb_connect(testdb_pgdb(name));
        testdb_pg_exec(c, sql);
        PQfinish(c);
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(testdb_path(name), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Runs sql on the connection of s, a store on PostgreSQL (in its transaction, if one is
 * open); the first column of the first row as a number (0 when none or NULL). */
static inline int64_t testdb_store_num(struct store *s, const char *sql)
{
    PGconn *c = store__pg(store__conn(s));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    int64_t v = st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : 0;
    PQclear(r);
    return v;
}

/* Runs the cases of both backends (all of them on SQLite) and, on PostgreSQL, only `both`: one
 * cmocka group, named after the backend. */
static inline int testdb_run_group(const struct CMUnitTest *sqlite_only, size_t nsqlite,
                                   const struct CMUnitTest *both, size_t nboth)
{
    struct CMUnitTest *all = calloc(nsqlite + nboth, sizeof *all);
    size_t n = 0;
    if (!testdb_pg())
        for (size_t i = 0; i < nsqlite; i++)
            all[n++] = sqlite_only[i];
    for (size_t i = 0; i < nboth; i++)
        all[n++] = both[i];
    int r = _cmocka_run_group_tests(testdb_pg() ? "postgresql" : "sqlite", all, n, NULL, NULL);
    free(all);
    return r;
}

#endif

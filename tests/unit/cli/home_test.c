/*
 * home_test.c - the home and baram.yaml: choosing the folder, parsing a good
 * config, unknown keys with hints, bad values, environment overrides, and
 * creating the home on a real file system.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "cli/home.h"
#include "exec/notify.h"
#include "store/store.h"

static const char *const env_keys[] = {"BARAM_HOME",
                                       "BARAM_DAGS",
                                       "BARAM_DB",
                                       "BARAM_LISTEN",
                                       "BARAM_PARALLELISM",
                                       "BARAM_LOG_LEVEL",
                                       "BARAM_HTTP_MAX_PER_HOST",
                                       "BARAM_SCHEDULER_HEARTBEAT",
                                       "BARAM_SCHEDULER_DEAD_AFTER"};

static int clear_env(void **state)
{
    for (size_t i = 0; i < sizeof env_keys / sizeof env_keys[0]; i++)
        unsetenv(env_keys[i]);
    home_set_global_flag(NULL);
    return 0;
}

/* The entry i as printed, for exact comparisons. */
static void assert_diag(const struct diag *d, size_t i, const char *want)
{
    assert_true(i < d->n);
    char *s = diag_format(&d->v[i]);
    assert_string_equal(s, want);
    free(s);
}

static int parse(struct home *h, const char *text, struct diag *d)
{
    home_init(h, "/tmp/h");
    return home_parse_config(h, text, strlen(text), "baram.yaml", d);
}

static void defaults_without_config(void **state)
{
    struct home h;
    home_init(&h, NULL);
    assert_string_equal(h.dir, ".baram");
    assert_false(h.from_flag);
    assert_string_equal(h.config_path, ".baram/baram.yaml");
    assert_string_equal(h.db, ".baram/baram.db");
    assert_string_equal(h.dags, "./dags");
    assert_string_equal(h.listen, "127.0.0.1:8080");
    assert_int_equal(h.parallelism, 32);
    assert_int_equal(h.http_max_per_host, 16);
    assert_int_equal(h.npools, 0);
    assert_int_equal(h.auth.token_ttl_ms, 3600 * 1000);
    home_release(&h);
    assert_null(h.dir);
}

static void flag_beats_env_beats_default(void **state)
{
    struct home h;
    setenv("BARAM_HOME", "/tmp/from-env", 1);
    home_init(&h, NULL);
    assert_string_equal(h.dir, "/tmp/from-env");
    assert_string_equal(h.db, "/tmp/from-env/baram.db");
    home_release(&h);
    home_set_global_flag("/tmp/global");
    home_init(&h, NULL);
    assert_string_equal(h.dir, "/tmp/global");
    assert_true(h.from_flag);
    home_release(&h);
    home_init(&h, "/tmp/from-flag/");
    assert_string_equal(h.dir, "/tmp/from-flag/");
    assert_string_equal(h.db, "/tmp/from-flag/baram.db");
    home_release(&h);
}

static void good_config_sets_every_key(void **state)
{
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h,
                           "# comment\n"
                           "dags: /srv/dags\n"
                           "db: /srv/baram.db\n"
                           "listen: 0.0.0.0:9090\n"
                           "parallelism: 8\n"
                           "log_level: debug\n"
                           "pools: {default: 16, db: 2}\n"
                           "http: {max_per_host: 4}\n"
                           "auth:\n"
                           "  token_ttl: 30m\n"
                           "  issuer: corp\n"
                           "  audience: baram-prod\n"
                           "  public_key: /etc/idp.pem\n",
                           &d),
                     0);
    assert_int_equal(d.n, 0);
    assert_string_equal(h.dags, "/srv/dags");
    assert_string_equal(h.db, "/srv/baram.db");
    assert_string_equal(h.listen, "0.0.0.0:9090");
    assert_int_equal(h.parallelism, 8);
    assert_int_equal(h.http_max_per_host, 4);
    assert_int_equal(h.log_level, LOG_DEBUG);
    assert_int_equal(h.npools, 2);
    assert_string_equal(h.pools[0].name, "default");
    assert_int_equal(h.pools[0].slots, 16);
    assert_string_equal(h.pools[1].name, "db");
    assert_int_equal(h.pools[1].slots, 2);
    assert_int_equal(h.auth.token_ttl_ms, 30 * 60 * 1000);
    assert_string_equal(h.auth.issuer, "corp");
    assert_string_equal(h.auth.audience, "baram-prod");
    assert_string_equal(h.auth.public_key, "/etc/idp.pem");
    home_release(&h);
    diag_release(&d);
}

static void empty_config_keeps_defaults(void **state)
{
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h, "", &d), 0);
    assert_int_equal(h.parallelism, 32);
    home_release(&h);
    assert_int_equal(parse(&h, "# nothing here\n", &d), 0);
    assert_int_equal(d.n, 0);
    home_release(&h);
    diag_release(&d);
}

static void unknown_key_has_position_and_hint(void **state)
{
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h, "dags: x\nparralelism: 4\nauth: {isuer: me}\nzzz: 1\n", &d),
                     -EINVAL);
    assert_int_equal(d.errors, 3);
    assert_diag(&d, 0,
                "baram.yaml:2:1: error: unknown key 'parralelism' (did you mean 'parallelism'?)");
    assert_diag(&d, 1,
                "baram.yaml:3:8: error: unknown key 'isuer' in 'auth' (did you mean 'issuer'?)");
    assert_diag(&d, 2, "baram.yaml:4:1: error: unknown key 'zzz'");
    /* A known key next to unknown ones still applies. */
    assert_string_equal(h.dags, "x");
    home_release(&h);
    diag_release(&d);
}

/* notify: `notifiers` of each kind, their defaults, and every bad one reported. */
static void notifiers_parse_and_check(void **state)
{
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h,
                           "notifiers:\n"
                           "  ops: {webhook: 'https://x/h', timeout: 2s, retries: 0}\n"
                           "  chat: {slack: 'http://s/x'}\n"
                           "  mail: {smtp: 'smtps://m:465', from: a@b.c, to: [x@y.z, q@r.s]}\n",
                           &d),
                     0);
    assert_int_equal(h.nnotifiers, 3);
    assert_string_equal(h.notifiers[0].name, "ops");
    assert_int_equal(h.notifiers[0].kind, NOTIFIER_WEBHOOK);
    assert_int_equal(h.notifiers[0].timeout_ms, 2000);
    assert_int_equal(h.notifiers[0].retries, 0);
    assert_int_equal(h.notifiers[1].kind, NOTIFIER_SLACK);
    assert_int_equal(h.notifiers[1].timeout_ms, NOTIFIER_TIMEOUT_MS);
    assert_int_equal(h.notifiers[1].retries, NOTIFIER_RETRIES);
    assert_int_equal(h.notifiers[2].kind, NOTIFIER_MAIL);
    assert_string_equal(h.notifiers[2].from, "a@b.c");
    assert_int_equal(h.notifiers[2].nto, 2);
    assert_string_equal(h.notifiers[2].to[1], "q@r.s");
    home_release(&h);
    diag_release(&d);

    diag_init(&d);
    assert_int_equal(parse(&h,
                           "notifiers:\n"
                           "  a: {webhook: 'ftp://x'}\n"
                           "  b: {smtp: 'smtp://x', from: nobody, to: []}\n"
                           "  c: {slak: 'http://x'}\n"
                           "  d: {webhook: 'http://x', slack: 'http://y'}\n"
                           "  e: {slack: 'http://x', to: a@b.c, retries: 101}\n"
                           "  f: 3\n",
                           &d),
                     -EINVAL);
    assert_diag(&d, 0,
                "baram.yaml:2:16: error: bad URL 'ftp://x' for 'notifiers.a.webhook' (http:// or "
                "https://)");
    assert_diag(&d, 1, "baram.yaml:3:31: error: bad mail address 'nobody' for 'notifiers.b.from'");
    assert_diag(&d, 2, "baram.yaml:3:43: error: 'notifiers.b.to' must not be empty");
    assert_diag(
        &d, 3, "baram.yaml:4:7: error: unknown key 'slak' in notifier 'c' (did you mean 'slack'?)");
    assert_diag(&d, 4,
                "baram.yaml:4:6: error: notifier 'c' has none of 'webhook', 'slack', 'smtp'");
    assert_diag(&d, 5,
                "baram.yaml:5:6: error: notifier 'd' has more than one of 'webhook', 'slack', "
                "'smtp'");
    assert_diag(&d, 6,
                "baram.yaml:6:46: error: bad 'notifiers.e.retries' '101' (a whole number from 0 "
                "to 100)");
    assert_diag(&d, 7,
                "baram.yaml:6:6: error: 'from' and 'to' are for mail notifiers ('smtp'), not "
                "'slack'");
    assert_diag(&d, 8, "baram.yaml:7:6: error: notifier 'f' must be a mapping, not a scalar");
    assert_int_equal(d.errors, 9);
    assert_int_equal(h.nnotifiers, 0);
    home_release(&h);
    diag_release(&d);
}

static void bad_values_are_each_reported(void **state)
{
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h,
                           "parallelism: 0\n"
                           "log_level: warnn\n"
                           "listen: localhost\n"
                           "pools: {a: -1, b: many}\n"
                           "auth: {token_ttl: soon}\n"
                           "dags: [a, b]\n"
                           "db: ''\n"
                           "parallelism: 3\n",
                           &d),
                     -EINVAL);
    assert_int_equal(d.errors, 9);
    assert_diag(&d, 0,
                "baram.yaml:1:14: error: bad parallelism '0' (a whole number from 1 to 100000)");
    assert_diag(&d, 1, "baram.yaml:2:12: error: bad log level 'warnn' (did you mean 'warn'?)");
    assert_diag(&d, 2,
                "baram.yaml:3:9: error: bad listen address 'localhost' (expected HOST:PORT)");
    assert_diag(&d, 3,
                "baram.yaml:4:12: error: bad slot count '-1' for pool 'a' "
                "(a whole number from 1 to 100000)");
    assert_diag(&d, 5, "baram.yaml:5:19: error: bad duration 'soon' for 'auth.token_ttl'");
    assert_diag(&d, 6, "baram.yaml:6:7: error: 'dags' must be a scalar, not a list");
    assert_diag(&d, 7, "baram.yaml:7:5: error: 'db' must not be empty");
    assert_diag(&d, 8, "baram.yaml:8:1: error: duplicate key 'parallelism'");
    assert_int_equal(h.parallelism, 32);
    home_release(&h);
    diag_release(&d);
}

static void malformed_yaml_and_non_mapping(void **state)
{
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h, "dags: [unclosed\n", &d), -EINVAL);
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(d.v[0].msg, "malformed YAML"));
    assert_true(d.v[0].line >= 1);
    home_release(&h);
    diag_release(&d);
    assert_int_equal(parse(&h, "- a\n- b\n", &d), -EINVAL);
    assert_diag(&d, 0, "baram.yaml:1:1: error: the config must be a mapping, not a list");
    home_release(&h);
    diag_release(&d);
}

static void env_overrides_config(void **state)
{
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h, "parallelism: 8\ndb: /a.db\nlog_level: info\n", &d), 0);
    setenv("BARAM_PARALLELISM", "3", 1);
    setenv("BARAM_DB", "sqlite:/b.db", 1);
    setenv("BARAM_DAGS", "/dags2", 1);
    setenv("BARAM_LISTEN", ":7070", 1);
    setenv("BARAM_LOG_LEVEL", "error", 1);
    setenv("BARAM_HTTP_MAX_PER_HOST", "64", 1);
    assert_int_equal(home_apply_env(&h, &d), 0);
    assert_int_equal(h.http_max_per_host, 64);
    assert_int_equal(h.parallelism, 3);
    assert_string_equal(h.db, "sqlite:/b.db");
    assert_string_equal(h.dags, "/dags2");
    assert_string_equal(h.listen, ":7070");
    assert_int_equal(h.log_level, LOG_ERROR);

    setenv("BARAM_PARALLELISM", "lots", 1);
    setenv("BARAM_LOG_LEVEL", "loud", 1);
    setenv("BARAM_HTTP_MAX_PER_HOST", "0", 1);
    assert_int_equal(home_apply_env(&h, &d), -EINVAL);
    assert_int_equal(d.errors, 3);
    assert_diag(&d, 0,
                "BARAM_PARALLELISM: error: bad parallelism 'lots' (a whole number from 1 to "
                "100000)");
    assert_diag(&d, 1,
                "BARAM_HTTP_MAX_PER_HOST: error: bad 'http.max_per_host' '0' (a whole number "
                "from 1 to 100000)");
    assert_diag(&d, 2,
                "BARAM_LOG_LEVEL: error: bad log level 'loud' (one of debug, info, warn, error, "
                "off)");
    assert_int_equal(h.parallelism, 3);
    assert_int_equal(h.http_max_per_host, 64);
    home_release(&h);
    diag_release(&d);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* rm -rf without a shell. */
static int rm_tree(const char *dir)
{
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void load_reads_the_home_config_then_env(void **state)
{
    char dir[] = "/tmp/baram-home-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct buf p = BUF_INIT(BUF_NO_MAX);
    assert_int_equal(buf_addf(&p, "%s/baram.yaml", dir), 0);
    write_file(p.data, "parallelism: 5\nlisten: 127.0.0.1:1234\n");
    setenv("BARAM_LISTEN", "127.0.0.1:5678", 1);
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(home_load(&h, dir, &d), 0);
    assert_int_equal(h.parallelism, 5);
    assert_string_equal(h.listen, "127.0.0.1:5678");
    home_release(&h);

    /* An error names the real file. */
    write_file(p.data, "paralelism: 5\n");
    assert_int_equal(home_load(&h, dir, &d), -EINVAL);
    char *s = diag_format(&d.v[0]);
    assert_non_null(strstr(s, "/baram.yaml:1:1: error: unknown key 'paralelism'"));
    free(s);
    home_release(&h);
    diag_release(&d);

    /* Unreadable (a folder where the file should be) is an error, not a crash. */
    unlink(p.data);
    assert_int_equal(mkdir(p.data, 0700), 0);
    assert_int_equal(home_load(&h, dir, &d), -EINVAL);
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(d.v[0].msg, "cannot read the config"));
    home_release(&h);
    diag_release(&d);
    rmdir(p.data);
    rmdir(dir);
    buf_release(&p);
}

static void create_makes_private_folders_and_store_needs_db(void **state)
{
    char dir[] = "/tmp/baram-home-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct buf home = BUF_INIT(BUF_NO_MAX);
    assert_int_equal(buf_addf(&home, "%s/a/b/home", dir), 0);
    struct home h;
    home_init(&h, home.data);
    struct err err = {0};
    struct store *s = NULL;
    /* Reading commands never create a database. */
    assert_int_equal(home_open_store(&h, false, &s, &err), -ENOENT);
    assert_int_equal(err.code, -ENOENT);
    assert_non_null(strstr(err.msg, "no database at"));
    assert_int_equal(home_create(&h, &err), 0);
    assert_int_equal(home_create(&h, &err), 0); /* idempotent */
    struct stat st;
    assert_int_equal(stat(home.data, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    struct buf logs = BUF_INIT(BUF_NO_MAX);
    assert_int_equal(buf_addf(&logs, "%s/logs", home.data), 0);
    assert_int_equal(stat(logs.data, &st), 0);
    assert_int_equal(home_open_store(&h, true, &s, &err), 0);
    store_close(s);
    assert_int_equal(home_open_store(&h, false, &s, &err), 0);
    store_close(s);

    /* A file in the way is a clear error. */
    struct home h2;
    struct buf bad = BUF_INIT(BUF_NO_MAX);
    assert_int_equal(buf_addf(&bad, "%s/baram.db/x", home.data), 0);
    home_init(&h2, bad.data);
    assert_true(home_create(&h2, &err) < 0);
    assert_non_null(strstr(err.msg, "cannot create the home"));
    home_release(&h2);

    assert_int_equal(rm_tree(dir), 0);
    buf_release(&bad);
    buf_release(&logs);
    buf_release(&home);
    home_release(&h);
}

static void scheduler_keys(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h, "scheduler: {heartbeat: 1s, dead_after: 3s}\n", &d), 0);
    assert_int_equal(h.sched_heartbeat_ms, 1000);
    assert_int_equal(h.sched_dead_after_ms, 3000);
    setenv("BARAM_SCHEDULER_DEAD_AFTER", "10s", 1);
    assert_int_equal(home_apply_env(&h, &d), 0);
    assert_int_equal(h.sched_dead_after_ms, 10000);
    setenv("BARAM_SCHEDULER_HEARTBEAT", "soon", 1);
    assert_int_equal(home_apply_env(&h, &d), -EINVAL);
    assert_diag(&d, 0,
                "BARAM_SCHEDULER_HEARTBEAT: error: bad 'scheduler.heartbeat' 'soon' (a duration "
                "from 100ms to 24h, like 5s)");
    unsetenv("BARAM_SCHEDULER_HEARTBEAT");
    unsetenv("BARAM_SCHEDULER_DEAD_AFTER");
    home_release(&h);
    diag_release(&d);
    diag_init(&d);
    assert_int_equal(parse(&h, "scheduler: {heartbeat: 0s, dead_afer: 3s}\n", &d), -EINVAL);
    assert_int_equal(d.errors, 2);
    assert_diag(&d, 0,
                "baram.yaml:1:24: error: bad 'scheduler.heartbeat' '0s' (a duration from 100ms to "
                "24h, like 5s)");
    assert_diag(&d, 1,
                "baram.yaml:1:28: error: unknown key 'dead_afer' in 'scheduler' (did you mean "
                "'dead_after'?)");
    home_release(&h);
    diag_release(&d);
}

/* versions part (issue 13): retention: {runs, logs, every}, durations above 0 */
static void retention_keys(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct home h;
    assert_int_equal(parse(&h, "dags: ./d\n", &d), 0);
    assert_int_equal(h.retention.runs_ms, 0); /* not set: nothing is deleted */
    assert_int_equal(h.retention.logs_ms, 0);
    assert_int_equal(h.retention.every_ms, 0);
    home_release(&h);
    assert_int_equal(parse(&h, "retention: {runs: 90d, logs: 30d, every: 10m}\n", &d), 0);
    assert_int_equal(h.retention.runs_ms, 90LL * 86400 * 1000);
    assert_int_equal(h.retention.logs_ms, 30LL * 86400 * 1000);
    assert_int_equal(h.retention.every_ms, 600 * 1000);
    home_release(&h);
    static const struct {
        const char *yaml, *diag;
    } bad[] = {
        {"retention: {runs: 0s}\n",
         "baram.yaml:1:19: error: bad duration '0s' for 'retention.runs' (like 90d, 12h or 30m)"},
        {"retention: {logs: forever}\n", "baram.yaml:1:19: error: bad duration 'forever' for "
                                         "'retention.logs' (like 90d, 12h or 30m)"},
        {"retention: {every: -1h}\n", "baram.yaml:1:20: error: bad duration '-1h' for "
                                      "'retention.every' (like 90d, 12h or 30m)"},
        {"retention: {run: 30d}\n",
         "baram.yaml:1:13: error: unknown key 'run' in 'retention' (did you mean 'runs'?)"},
        {"retention: 30d\n", "baram.yaml:1:12: error: 'retention' must be a mapping, not a scalar"},
        {"retention: {runs: [1]}\n", "baram.yaml:1:19: error: 'retention.runs' must be a scalar, "
                                     "not a list"},
        {"retentoin: {runs: 1d}\n",
         "baram.yaml:1:1: error: unknown key 'retentoin' (did you mean 'retention'?)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        diag_release(&d);
        diag_init(&d);
        assert_int_equal(parse(&h, bad[i].yaml, &d), -EINVAL);
        assert_diag(&d, 0, bad[i].diag);
        home_release(&h);
    }
    diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_without_config, clear_env),
        cmocka_unit_test_setup(flag_beats_env_beats_default, clear_env),
        cmocka_unit_test_setup(good_config_sets_every_key, clear_env),
        cmocka_unit_test_setup(scheduler_keys, clear_env),
        cmocka_unit_test_setup(retention_keys, clear_env),
        cmocka_unit_test_setup(empty_config_keeps_defaults, clear_env),
        cmocka_unit_test_setup(unknown_key_has_position_and_hint, clear_env),
        cmocka_unit_test_setup(bad_values_are_each_reported, clear_env),
        cmocka_unit_test_setup(notifiers_parse_and_check, clear_env),
        cmocka_unit_test_setup(malformed_yaml_and_non_mapping, clear_env),
        cmocka_unit_test_setup(env_overrides_config, clear_env),
        cmocka_unit_test_setup(load_reads_the_home_config_then_env, clear_env),
        cmocka_unit_test_setup(create_makes_private_folders_and_store_needs_db, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

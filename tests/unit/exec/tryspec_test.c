/*
 * tryspec_test.c - a try's spec survives encode -> decode for each kind (raw
 * bytes included), and hostile JSON is refused with a message naming the
 * problem, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "exec/tryspec.h"

/* Encodes s, decodes it into *out, and checks the text is stable (encode(decode(x)) == x). */
static char *round_trip(const struct tryspec *s, struct tryspec *out)
{
    char *json = tryspec_encode(s);
    assert_non_null(json);
    char *msg = NULL;
    int r = tryspec_decode(json, strlen(json), out, &msg);
    if (r != 0)
        fail_msg("decode of %s: %s", json, msg);
    assert_null(msg);
    char *again = tryspec_encode(out);
    assert_string_equal(json, again);
    free(again);
    return json;
}

static void same_common(const struct tryspec *a, const struct tryspec *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->dag, b->dag);
    assert_string_equal(a->run_id, b->run_id);
    assert_string_equal(a->task, b->task);
    assert_string_equal(a->task_id, b->task_id);
    assert_int_equal(a->map_index, b->map_index);
    assert_int_equal(a->try_number, b->try_number);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->grace_ms, b->grace_ms);
    assert_int_equal(a->nenv, b->nenv);
    for (size_t i = 0; i < a->nenv; i++)
        assert_string_equal(a->env[i], b->env[i]);
}

static void run_kind_round_trips(void **state)
{
    (void)state;
    char *env[] = {"BARAM_DAG=etl", "OUTPUT_EXTRACT=caf\xc3\xa9 \"q\"\n",
                   "PARAM_X=", "OUTPUT_RAW=\xff\xfe bytes"};
    struct tryspec s = {.kind = TRYSPEC_RUN,
                        .dag = "etl",
                        .run_id = "manual__2026-12-07T12:00:00Z",
                        .task = "load",
                        .task_id = "load[3]",
                        .queue = "gpu",
                        .dir = "/srv/dags",
                        .map_index = 3,
                        .try_number = 2,
                        .timeout_ms = 60000,
                        .grace_ms = 5000,
                        .cmd = "echo \xfe\xfe && exit 3",
                        .env = env,
                        .nenv = 4};
    struct tryspec d;
    char *json = round_trip(&s, &d);
    same_common(&s, &d);
    assert_string_equal(d.queue, "gpu");
    assert_string_equal(d.dir, "/srv/dags");
    assert_string_equal(d.cmd, s.cmd);
    /* Bytes that are not UTF-8 travel as base64; valid text stays readable. */
    assert_non_null(strstr(json, "\"b64\""));
    assert_non_null(strstr(json, "caf\xc3\xa9"));
    free(json);
    tryspec_release(&d);
    assert_null(d.cmd);
    assert_int_equal(d.nenv, 0);
}

/* vars: the secrets a worker masks travel as "mask", absent when there are none. */
static void mask_round_trips(void **state)
{
    (void)state;
    char *mask[] = {"s3cr3t", "caf\xc3\xa9 \xff bytes"};
    struct tryspec s = {.kind = TRYSPEC_RUN,
                        .dag = "etl",
                        .run_id = "r",
                        .task = "load",
                        .task_id = "load",
                        .try_number = 1,
                        .cmd = "true",
                        .mask = mask,
                        .nmask = 2};
    struct tryspec d;
    char *json = round_trip(&s, &d);
    assert_int_equal(d.nmask, 2);
    assert_string_equal(d.mask[0], "s3cr3t");
    assert_string_equal(d.mask[1], mask[1]);
    free(json);
    tryspec_release(&d);
    s.nmask = 0;
    json = round_trip(&s, &d);
    assert_null(strstr(json, "\"mask\""));
    assert_int_equal(d.nmask, 0);
    free(json);
    tryspec_release(&d);
    char *msg = NULL;
    static const char bad[] = "{\"v\":1,\"kind\":\"run\",\"dag\":\"d\",\"run_id\":\"r\","
                              "\"task\":\"t\",\"task_id\":\"t\",\"try\":1,\"cmd\":\"x\","
                              "\"mask\":[\"ok\",3]}";
    assert_int_equal(tryspec_decode(bad, strlen(bad), &d, &msg), -EINVAL);
    assert_non_null(strstr(msg, "mask[1]"));
    assert_null(d.mask);
    free(msg);
}

static void http_kind_round_trips_with_a_binary_body(void **state)
{
    (void)state;
    static const char body[] = {'{', 0, '\x80', '}'};
    struct tryspec_header hs[] = {{"Content-Type", "application/json"}, {"X-Empty", NULL}};
    int expect[] = {200, 201, 404};
    struct tryspec s = {.kind = TRYSPEC_HTTP,
                        .dag = "d",
                        .run_id = "r",
                        .task = "call",
                        .task_id = "call",
                        .map_index = -1,
                        .try_number = 1,
                        .grace_ms = 10000};
    s.http.method = "POST";
    s.http.url = "https://example.com/x?y=1";
    s.http.body = (char *)body;
    s.http.body_len = sizeof(body);
    s.http.headers = hs;
    s.http.nheaders = 2;
    s.http.expect = expect;
    s.http.nexpect = 3;
    s.http.timeout_ms = 1500;
    s.http.cb_failures = 3;
    s.http.cb_reset_ms = 30000;
    struct tryspec d;
    free(round_trip(&s, &d));
    same_common(&s, &d);
    assert_string_equal(d.queue, "default");
    assert_null(d.cmd);
    assert_string_equal(d.http.method, "POST");
    assert_string_equal(d.http.url, s.http.url);
    assert_int_equal(d.http.body_len, sizeof(body));
    assert_memory_equal(d.http.body, body, sizeof(body));
    assert_int_equal(d.http.body[sizeof(body)], 0);
    assert_int_equal(d.http.nheaders, 2);
    assert_string_equal(d.http.headers[0].name, "Content-Type");
    assert_string_equal(d.http.headers[0].value, "application/json");
    assert_null(d.http.headers[1].value);
    assert_int_equal(d.http.nexpect, 3);
    assert_int_equal(d.http.expect[2], 404);
    assert_int_equal(d.http.timeout_ms, 1500);
    assert_int_equal(d.http.cb_failures, 3);
    assert_int_equal(d.http.cb_reset_ms, 30000);
    tryspec_release(&d);
}

static void wait_kind_round_trips(void **state)
{
    (void)state;
    struct tryspec s = {.kind = TRYSPEC_WAIT,
                        .dag = "d",
                        .run_id = "r",
                        .task = "w",
                        .task_id = "w",
                        .map_index = -1,
                        .try_number = 1};
    s.wait.file = "/data/x.done";
    s.wait.every_ms = 250;
    s.wait.timeout_ms = 9000;
    struct tryspec d;
    free(round_trip(&s, &d));
    same_common(&s, &d);
    assert_string_equal(d.wait.file, "/data/x.done");
    assert_null(d.wait.http_url);
    assert_int_equal(d.wait.every_ms, 250);
    assert_int_equal(d.wait.timeout_ms, 9000);
    tryspec_release(&d);
}

static void defaults_fill_optional_keys(void **state)
{
    (void)state;
    static const char j[] =
        "{\"v\":1,\"kind\":\"run\",\"dag\":\"d\",\"run_id\":\"r\",\"task\":\"t\","
        "\"task_id\":\"t\",\"try\":1,\"cmd\":\"true\",\"future\":{\"x\":[1]}}";
    struct tryspec d;
    char *msg = NULL;
    assert_int_equal(tryspec_decode(j, sizeof(j) - 1, &d, &msg), 0);
    assert_int_equal(d.map_index, -1);
    assert_string_equal(d.queue, "default");
    assert_null(d.dir);
    assert_int_equal(d.grace_ms, TRYSPEC_GRACE_MS_DEF);
    assert_int_equal(d.timeout_ms, 0);
    assert_int_equal(d.nenv, 0);
    tryspec_release(&d);
}

static void encode_refuses_a_spec_missing_required_strings(void **state)
{
    (void)state;
    struct tryspec s = {.kind = TRYSPEC_RUN,
                        .dag = "d",
                        .run_id = "r",
                        .task = "t",
                        .task_id = "t",
                        .try_number = 1};
    assert_null(tryspec_encode(&s)); /* no cmd */
    s.kind = TRYSPEC_HTTP;
    assert_null(tryspec_encode(&s)); /* no url */
    s.kind = (enum tryspec_kind)7;
    assert_null(tryspec_encode(&s));
}

/* Each case: a spec text and a part of the message it must give. */
struct bad {
    const char *json;
    const char *msg;
};

#define HEAD "{\"v\":1,\"dag\":\"d\",\"run_id\":\"r\",\"task\":\"t\",\"task_id\":\"t\",\"try\":1,"

static const struct bad bads[] = {
    {"", "empty"},
    {"[]", "not a JSON object"},
    {"null", "invalid JSON"},
    {"{", "invalid JSON"},
    {"{\"v\":1}garbage", "invalid JSON"},
    {"\"\xff\"", "invalid JSON"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"\xc3\x28\"}", "invalid JSON"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"a\",\"cmd\":\"b\"}", "invalid JSON"},
    {"{\"kind\":\"run\"}", "missing key 'v'"},
    {"{\"v\":2,\"kind\":\"run\"}", "version 2 is not supported"},
    {"{\"v\":\"1\",\"kind\":\"run\"}", "'v' must be an integer"},
    {"{\"v\":1.0,\"kind\":\"run\"}", "'v' must be an integer"},
    {"{\"v\":1}", "missing key 'kind'"},
    {"{\"v\":1,\"kind\":3}", "'kind' must be a string"},
    {"{\"v\":1,\"kind\":\"shell\"}", "unknown kind"},
    {"{\"v\":1,\"kind\":\"run\\u0000x\"}", "unknown kind"},
    {"{\"v\":1,\"kind\":\"run\",\"run_id\":\"r\"}", "missing key 'dag'"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":\"\"}", "'dag' is empty"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":null}", "missing key 'dag'"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":[\"d\"]}", "'dag' must be a string"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":\"a\\u0000b\"}", "'dag' holds a NUL byte"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":{\"b64\":\"YQBi\"}}", "'dag' holds a NUL byte"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":{\"b64\":\"!!!\"}}", "'dag' is not valid base64"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":{\"b64\":7}}", "'dag' must be a string"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":{}}", "'dag' must be a string"},
    {HEAD "\"kind\":\"run\"}", "missing key 'cmd'"},
    {HEAD "\"kind\":\"run\",\"cmd\":true}", "'cmd' must be a string"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"try\":0}", "invalid JSON"}, /* duplicate */
    {"{\"v\":1,\"kind\":\"run\",\"dag\":\"d\",\"run_id\":\"r\",\"task\":\"t\",\"task_id\":\"t\","
     "\"try\":0,\"cmd\":\"x\"}",
     "'try' is 0, out of range"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":\"d\",\"run_id\":\"r\",\"task\":\"t\",\"task_id\":\"t\","
     "\"try\":4294967297,\"cmd\":\"x\"}",
     "'try' is 4294967297, out of range"},
    {"{\"v\":1,\"kind\":\"run\",\"dag\":\"d\",\"run_id\":\"r\",\"task\":\"t\",\"task_id\":\"t\","
     "\"cmd\":\"x\"}",
     "missing key 'try'"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"map_index\":-2}", "'map_index' is -2"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"timeout_ms\":-1}", "'timeout_ms' is -1"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"grace_ms\":1e3}", "'grace_ms' must be an integer"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"queue\":\"\"}", "'queue' is empty"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"env\":\"A=B\"}", "'env' must be an array"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"env\":[\"A=B\",5]}", "'env[1]' must be a string"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"env\":[\"AB\"]}", "'env[0]' is not NAME=VALUE"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"env\":[\"=B\"]}", "'env[0]' is not NAME=VALUE"},
    {HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"env\":[\"A=\\u0000\"]}", "'env[0]' holds a NUL"},
    {HEAD "\"kind\":\"http\"}", "missing key 'http'"},
    {HEAD "\"kind\":\"http\",\"http\":[]}", "'http' must be an object"},
    {HEAD "\"kind\":\"http\",\"http\":{}}", "missing key 'http.url'"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"method\":\"\"}}", "'http.method' is empty"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"body\":1}}", "'http.body' must be a string"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"headers\":[[\"a\"]]}}",
     "'http.headers[0]' must be a [name, value] pair"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"headers\":[[\"\",\"v\"]]}}",
     "'http.headers[0]' has an empty name"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"headers\":[[\"a\",1]]}}",
     "'http.headers[0]' must be a string"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"expect\":[200,\"x\"]}}",
     "'http.expect[1]' must be an HTTP status"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"expect\":[99]}}",
     "'http.expect[0]' must be an HTTP status"},
    {HEAD "\"kind\":\"http\",\"http\":{\"url\":\"u\",\"cb_failures\":-1}}", "'http.cb_failures'"},
    {HEAD "\"kind\":\"wait\"}", "missing key 'wait'"},
    {HEAD "\"kind\":\"wait\",\"wait\":{}}", "'wait' needs 'file' or 'http_url'"},
    {HEAD "\"kind\":\"wait\",\"wait\":{\"file\":null,\"http_url\":null}}", "needs 'file'"},
    {HEAD "\"kind\":\"wait\",\"wait\":{\"file\":\"f\",\"every_ms\":-5}}", "'wait.every_ms' is -5"},
    {HEAD "\"kind\":\"wait\",\"wait\":{\"file\":5}}", "'wait.file' must be a string"},
};

static void hostile_inputs_give_clear_messages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        struct tryspec d;
        char *msg = NULL;
        int r = tryspec_decode(bads[i].json, strlen(bads[i].json), &d, &msg);
        if (r != -EINVAL || !msg || !strstr(msg, bads[i].msg))
            fail_msg("case %zu (%s): rc %d, message '%s', expected '%s'", i, bads[i].json, r,
                     msg ? msg : "(none)", bads[i].msg);
        assert_int_equal(strncmp(msg, "try spec: ", 10), 0);
        /* Nothing is handed over on failure. */
        assert_null(d.dag);
        assert_null(d.env);
        assert_int_equal(d.nenv, 0);
        free(msg);
    }
    /* A NUL in the text itself, and NULL input. */
    struct tryspec d;
    char *msg = NULL;
    static const char nul[] = "{\"v\":1\0}";
    assert_int_equal(tryspec_decode(nul, sizeof(nul) - 1, &d, &msg), -EINVAL);
    if (!strstr(msg, "invalid JSON"))
        fail_msg("NUL in the text: %s", msg);
    free(msg);
    assert_int_equal(tryspec_decode(NULL, 0, &d, &msg), -EINVAL);
    free(msg);
}

/* HEAD + "kind":"run","cmd":"x","env":[ n copies of item ] } */
static char *env_spec(size_t n, const char *item)
{
    struct buf b;
    buf_init(&b, 16 * 1024 * 1024);
    assert_int_equal(buf_adds(&b, HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"env\":["), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf_addf(&b, "%s\"%s\"", i ? "," : "", item), 0);
    assert_int_equal(buf_adds(&b, "]}"), 0);
    return buf_detach(&b, NULL);
}

static void huge_values_are_refused(void **state)
{
    (void)state;
    struct tryspec d;
    char *msg = NULL;
    /* The limit itself is fine; one more is not. */
    char *j = env_spec(TRYSPEC_ENV_MAX, "A=1");
    assert_int_equal(tryspec_decode(j, strlen(j), &d, &msg), 0);
    assert_int_equal(d.nenv, TRYSPEC_ENV_MAX);
    tryspec_release(&d);
    free(j);
    j = env_spec(TRYSPEC_ENV_MAX + 1, "A=1");
    assert_int_equal(tryspec_decode(j, strlen(j), &d, &msg), -EINVAL);
    assert_non_null(strstr(msg, "'env' has 4097 entries, over the 4096 limit"));
    free(msg);
    free(j);

    /* A string one byte over 1 MiB, plain and as base64. */
    char *big = malloc(TRYSPEC_STR_MAX + 2);
    memset(big, 'a', TRYSPEC_STR_MAX + 1);
    big[TRYSPEC_STR_MAX + 1] = 0;
    big[0] = 'A';
    big[1] = '=';
    j = env_spec(1, big);
    assert_int_equal(tryspec_decode(j, strlen(j), &d, &msg), -EINVAL);
    assert_non_null(strstr(msg, "'env[0]' is 1048577 bytes, over the 1048576 limit"));
    free(msg);
    free(j);
    struct tryspec s = {.kind = TRYSPEC_HTTP,
                        .dag = "d",
                        .run_id = "r",
                        .task = "t",
                        .task_id = "t",
                        .try_number = 1};
    s.http.url = "http://x";
    big[5] = '\x80'; /* not UTF-8: goes as base64 */
    s.http.body = big;
    s.http.body_len = TRYSPEC_STR_MAX + 1;
    j = tryspec_encode(&s);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"b64\""));
    assert_int_equal(tryspec_decode(j, strlen(j), &d, &msg), -EINVAL);
    assert_non_null(strstr(msg, "'http.body' is over the 1048576 bytes limit"));
    free(msg);
    free(j);
    s.http.body_len = TRYSPEC_STR_MAX; /* exactly the limit decodes */
    j = tryspec_encode(&s);
    assert_int_equal(tryspec_decode(j, strlen(j), &d, &msg), 0);
    assert_int_equal(d.http.body_len, TRYSPEC_STR_MAX);
    assert_memory_equal(d.http.body, big, TRYSPEC_STR_MAX);
    tryspec_release(&d);
    free(j);
    free(big);

    /* Deep nesting in an ignored key is jansson's to refuse, not a stack overflow. */
    struct buf b;
    buf_init(&b, 16 * 1024 * 1024);
    assert_int_equal(buf_adds(&b, HEAD "\"kind\":\"run\",\"cmd\":\"x\",\"deep\":"), 0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(buf_addc(&b, '['), 0);
    size_t len;
    j = buf_detach(&b, &len);
    assert_int_equal(tryspec_decode(j, len, &d, &msg), -EINVAL);
    assert_non_null(strstr(msg, "invalid JSON"));
    free(msg);
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_kind_round_trips),
        cmocka_unit_test(mask_round_trips),
        cmocka_unit_test(http_kind_round_trips_with_a_binary_body),
        cmocka_unit_test(wait_kind_round_trips),
        cmocka_unit_test(defaults_fill_optional_keys),
        cmocka_unit_test(encode_refuses_a_spec_missing_required_strings),
        cmocka_unit_test(hostile_inputs_give_clear_messages),
        cmocka_unit_test(huge_values_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

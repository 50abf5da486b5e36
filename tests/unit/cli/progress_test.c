/*
 * progress_test.c - what `baram run` shows while it runs: plain lines only
 * for finished instances when not on a terminal, the live line on a
 * terminal (throttled, failures kept above it), nothing when quiet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/progress.h"
#include "dag/state.h"
#include "sched/run.h"

static void feed(struct progress *p, uint32_t done, uint32_t total, const char *id,
                 enum ti_state st, uint32_t running, const char *const *ids, size_t nids)
{
    struct run_progress rp = {
        .total = total,
        .done = done,
        .running = running,
        .failed = 0,
        .elapsed_ms = 3200,
        .task_id = id,
        .state = st,
        .running_ids = ids,
        .nrunning_ids = nids,
    };
    progress_update(p, &rp);
}

static void plain_lines_for_finishes_only(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct progress p;
    progress_init(&p, f, false, false, false);
    feed(&p, 0, 3, "a", TI_SCHEDULED, 0, NULL, 0);
    feed(&p, 0, 3, "a", TI_QUEUED, 1, NULL, 0);
    feed(&p, 0, 3, "a", TI_RUNNING, 1, NULL, 0);
    feed(&p, 1, 3, "a", TI_SUCCESS, 0, NULL, 0);
    feed(&p, 2, 3, "b", TI_UPSTREAM_FAILED, 0, NULL, 0);
    progress_finish(&p);
    progress_release(&p);
    fclose(f);
    /* a ran for ~0 ms here: its line has a duration; b never ran: none. */
    assert_non_null(strstr(text, "1/3 a success 0.0"));
    assert_non_null(strstr(text, "s\n2/3 b upstream_failed\n"));
    assert_null(strstr(text, "scheduled"));
    assert_null(strstr(text, "\r"));
    free(text);
}

static void live_line_on_a_terminal(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct progress p;
    progress_init(&p, f, true, false, false);
    const char *ids[] = {"extract", "shards[3]"};
    feed(&p, 12, 40, "extract", TI_RUNNING, 6, ids, 2);
    /* Within 100 ms: not redrawn. */
    feed(&p, 12, 40, "x", TI_RUNNING, 6, ids, 2);
    feed(&p, 13, 40, "bad", TI_FAILED, 5, ids, 2);
    progress_finish(&p);
    progress_release(&p);
    fclose(f);
    assert_non_null(strstr(text, "\r\033[K[ 12/40 ] running: extract, shards[3] (+4) 3.20s"));
    assert_non_null(strstr(text, "13/40 bad failed\n"));
    /* The first draw, then the failure (clears, prints, redraws at once): two live lines. */
    size_t draws = 0;
    for (const char *s = text; (s = strstr(s, "[ 1")); s++)
        draws++;
    assert_int_equal(draws, 2);
    /* It ends with the line cleared. */
    assert_true(len >= 4);
    assert_memory_equal(text + len - 4, "\r\033[K", 4);
    free(text);
}

static void ticker_moves_the_elapsed_time(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct progress p;
    progress_init(&p, f, true, false, true);
    const char *ids[] = {"long"};
    feed(&p, 0, 1, "long", TI_RUNNING, 1, ids, 1);
    const struct timespec wait = {0, 450 * 1000000L};
    nanosleep(&wait, NULL);
    progress_finish(&p);
    progress_release(&p);
    fclose(f);
    /* Drawn at 3.20s by the report, then again by the ticker with a later time. */
    assert_non_null(strstr(text, "[ 0/1 ] running: long 3.20s"));
    size_t draws = 0;
    for (const char *s = text; (s = strstr(s, "[ 0/1 ]")); s++)
        draws++;
    assert_true(draws >= 3);
    size_t same = 0;
    for (const char *s = text; (s = strstr(s, "long 3.20s")); s++)
        same++;
    assert_true(same < draws); /* the time moved on */
    free(text);
}

static void a_late_for_each_adds_mapped_not_total(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct progress p;
    progress_init(&p, f, false, false, false);
    /* a and b known at the start; fan's 3 items come from a's output */
    feed(&p, 1, 2, "a", TI_SUCCESS, 0, NULL, 0);
    feed(&p, 2, 5, "fan[0]", TI_SUCCESS, 2, NULL, 0);
    feed(&p, 5, 5, "b", TI_SUCCESS, 0, NULL, 0);
    progress_finish(&p);
    progress_release(&p);
    fclose(f);
    assert_non_null(strstr(text, "1/2 a success"));
    assert_non_null(strstr(text, "\n2/2 +3 mapped fan[0] success"));
    assert_non_null(strstr(text, "\n5/2 +3 mapped b success"));
    assert_null(strstr(text, "/5"));
    free(text);

    /* the live line too */
    f = open_memstream(&text, &len);
    progress_init(&p, f, true, false, false);
    const char *ids[] = {"fan[1]"};
    feed(&p, 1, 2, "a", TI_SUCCESS, 0, NULL, 0);
    const struct timespec wait = {0, 120 * 1000000L}; /* past the redraw throttle */
    nanosleep(&wait, NULL);
    feed(&p, 1, 8, "fan[1]", TI_RUNNING, 6, ids, 1);
    progress_finish(&p);
    progress_release(&p);
    fclose(f);
    assert_non_null(strstr(text, "[ 1/2 ]"));
    assert_non_null(strstr(text, "[ 1/2 +6 mapped ] running: fan[1] (+5)"));
    assert_null(strstr(text, "/8"));
    free(text);
}

static void quiet_prints_nothing(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct progress p;
    progress_init(&p, f, true, true, false);
    feed(&p, 1, 1, "a", TI_FAILED, 0, NULL, 0);
    progress_finish(&p);
    progress_release(&p);
    fclose(f);
    assert_int_equal(len, 0);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_lines_for_finishes_only),
        cmocka_unit_test(live_line_on_a_terminal),
        cmocka_unit_test(ticker_moves_the_elapsed_time),
        cmocka_unit_test(a_late_for_each_adds_mapped_not_total),
        cmocka_unit_test(quiet_prints_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

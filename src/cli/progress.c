/*
 * progress.c - live progress of a foreground run; see progress.h. Each
 * instance's start is remembered (monotonic ms, keyed by task id) when it is
 * first seen running, so a finish line can say how long it ran. The live
 * line is drawn from a snapshot copied out of each report, cut to the
 * terminal's width so `\r` always returns to its start; the ticker thread
 * redraws the same snapshot with the elapsed time moved on.
 *
 * Threads: progress_update on the run's loop thread, the ticker on its own;
 * both take p->lock around the snapshot and every write to p->out. The
 * start-time map is touched by progress_update only.
 */
#include "cli/progress.h"

#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "cli/out.h"
#include "dag/state.h"
#include "sched/run.h"

static void *ticker_main(void *arg);

void progress_init(struct progress *p, FILE *out, bool tty, bool quiet, bool ticker)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = tty;
    p->quiet = quiet;
    p->last_draw_ms = -PROGRESS_REDRAW_MS;
    hmap_init(&p->started);
    pthread_mutex_init(&p->lock, NULL);
    if (tty && !quiet && ticker)
        p->ticking = pthread_create(&p->ticker, NULL, ticker_main, p) == 0;
}

static void stop_ticker(struct progress *p)
{
    if (!p->ticking)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->ticker, NULL);
    p->ticking = false;
}

void progress_release(struct progress *p)
{
    stop_ticker(p);
    pthread_mutex_destroy(&p->lock);
    hmap_release(&p->started);
    for (size_t i = 0; i < p->ids.n; i++)
        free(p->ids.v[i]);
    VEC_FREE(&p->ids);
    VEC_FREE(&p->starts);
}

static int term_width(FILE *f)
{
    struct winsize ws;
    int fd = fileno(f);
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        return ws.ws_col;
    return 80;
}

/* Under lock. */
static void clear_line(struct progress *p)
{
    if (p->line_shown) {
        fputs("\r\033[K", p->out);
        p->line_shown = false;
    }
}

/* "DONE/TOTAL", and " +N mapped" once for_each expansions added instances. */
static void count_add(struct buf *b, const struct progress_snap *s)
{
    (void)!buf_addf(b, "%u/%u", s->done, s->total);
    if (s->mapped)
        (void)!buf_addf(b, " +%u mapped", s->mapped);
}

/* Draws the snapshot, its elapsed time moved on to now. Under lock. */
static void draw(struct progress *p, int64_t now)
{
    const struct progress_snap *s = &p->snap;
    if (!s->valid)
        return;
    struct buf b = BUF_INIT(4096);
    (void)!buf_adds(&b, "[ ");
    count_add(&b, s);
    (void)!buf_adds(&b, " ]");
    if (s->failed)
        (void)!buf_addf(&b, " %u failed,", s->failed);
    if (s->running) {
        (void)!buf_adds(&b, " running: ");
        for (size_t i = 0; i < s->nids; i++)
            (void)!buf_addf(&b, "%s%s", i ? ", " : "", s->ids[i]);
        if (s->running > s->nids)
            (void)!buf_addf(&b, " (+%zu)", (size_t)s->running - s->nids);
    }
    char el[16];
    out_duration(s->elapsed_ms + (now - s->at_ms), el, sizeof el);
    /* The elapsed time stays visible: cut the middle if the line is too wide. */
    size_t width = (size_t)term_width(p->out) - 1;
    size_t ellen = strlen(el) + 1;
    if (b.len + ellen > width && width > ellen + 3) {
        buf_truncate(&b, width - ellen - 3);
        (void)!buf_adds(&b, "...");
    }
    fprintf(p->out, "\r\033[K%s %s", b.data, el);
    fflush(p->out);
    p->line_shown = true;
    p->last_draw_ms = now;
    buf_release(&b);
}

static void *ticker_main(void *arg)
{
    struct progress *p = arg;
    const struct timespec tick = {0, PROGRESS_REDRAW_MS * 1000000L};
    for (;;) {
        nanosleep(&tick, NULL);
        pthread_mutex_lock(&p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        int64_t now = when_mono_ms();
        if (now - p->last_draw_ms >= PROGRESS_REDRAW_MS)
            draw(p, now);
        pthread_mutex_unlock(&p->lock);
    }
}

/* How long the instance ran (ms), or -1 if it was never seen running. */
static int64_t ran_for(struct progress *p, const char *id)
{
    uint32_t i;
    if (!hmap_get(&p->started, id, strlen(id), &i))
        return -1;
    return when_mono_ms() - p->starts.v[i];
}

static void note_start(struct progress *p, const char *id)
{
    uint32_t i;
    if (hmap_get(&p->started, id, strlen(id), &i))
        return;
    char *key = xstrdup(id);
    VEC_PUSH(&p->ids, key);
    VEC_PUSH(&p->starts, when_mono_ms());
    hmap_put(&p->started, key, strlen(key), (uint32_t)(p->starts.n - 1));
}

static void take_snapshot(struct progress *p, const struct run_progress *rp, int64_t now)
{
    struct progress_snap *s = &p->snap;
    if (!p->base_total)
        p->base_total = rp->total;
    s->total = rp->total < p->base_total ? rp->total : p->base_total;
    s->mapped = rp->total - s->total;
    s->done = rp->done;
    s->running = rp->running;
    s->failed = rp->failed;
    s->elapsed_ms = rp->elapsed_ms;
    s->at_ms = now;
    s->nids = 0;
    for (size_t i = 0; i < rp->nrunning_ids && i < PROGRESS_IDS; i++)
        snprintf(s->ids[s->nids++], PROGRESS_ID_MAX, "%s", rp->running_ids[i]);
    s->valid = true;
}

void progress_update(void *ud, const struct run_progress *rp)
{
    struct progress *p = ud;
    if (p->quiet)
        return;
    if (rp->task_id && rp->state == TI_RUNNING)
        note_start(p, rp->task_id);
    int64_t now = when_mono_ms();
    pthread_mutex_lock(&p->lock);
    take_snapshot(p, rp, now);
    bool finished = rp->task_id && ti_state_finished(rp->state);
    if (finished && (!p->tty || rp->state == TI_FAILED || rp->state == TI_UPSTREAM_FAILED)) {
        /* Plain mode: every finish; terminal mode: failures, kept above the live line. */
        char d[16] = "";
        int64_t ms = ran_for(p, rp->task_id);
        if (ms >= 0) {
            d[0] = ' ';
            out_duration(ms, d + 1, sizeof d - 1);
        }
        clear_line(p);
        struct buf count = BUF_INIT(64);
        count_add(&count, &p->snap);
        fprintf(p->out, "%s %s %s%s\n", count.data, rp->task_id, ti_state_name(rp->state), d);
        buf_release(&count);
        fflush(p->out);
        p->last_draw_ms = -PROGRESS_REDRAW_MS; /* redraw the live line at once */
    }
    if (p->tty && now - p->last_draw_ms >= PROGRESS_REDRAW_MS)
        draw(p, now);
    pthread_mutex_unlock(&p->lock);
}

void progress_finish(struct progress *p)
{
    stop_ticker(p);
    if (p->tty && !p->quiet) {
        clear_line(p);
        fflush(p->out);
    }
}

/*
 * circuit.c - the circuit breaker state machine; see circuit.h. Three states
 * and a streak counter; time only ever comes in as an argument, so every
 * transition is a plain function of (state, event, now). Loop thread.
 */
#include "exec/circuit.h"

void circuit_init(struct circuit *c, int failures, int64_t reset_ms)
{
    c->state = CIRCUIT_CLOSED;
    c->streak = 0;
    c->opened_at_ms = 0;
    circuit_configure(c, failures, reset_ms);
}

void circuit_configure(struct circuit *c, int failures, int64_t reset_ms)
{
    c->failures = failures < 1 ? 1 : failures;
    c->reset_ms = reset_ms < 0 ? 0 : reset_ms;
}

static void circuit_open(struct circuit *c, int64_t now_ms)
{
    c->state = CIRCUIT_OPEN;
    c->opened_at_ms = now_ms;
    c->streak = 0;
}

bool circuit_allow(struct circuit *c, int64_t now_ms)
{
    switch (c->state) {
    case CIRCUIT_CLOSED:
        return true;
    case CIRCUIT_OPEN:
        if (now_ms - c->opened_at_ms >= c->reset_ms) {
            c->state = CIRCUIT_HALF_OPEN;
            return true;
        }
        return false;
    case CIRCUIT_HALF_OPEN:
        return false;
    }
    return false;
}

void circuit_record(struct circuit *c, bool ok, int64_t now_ms)
{
    switch (c->state) {
    case CIRCUIT_CLOSED:
        if (ok) {
            c->streak = 0;
        } else if (++c->streak >= c->failures) {
            circuit_open(c, now_ms);
        }
        break;
    case CIRCUIT_HALF_OPEN:
        if (ok) {
            c->state = CIRCUIT_CLOSED;
            c->streak = 0;
        } else {
            circuit_open(c, now_ms);
        }
        break;
    case CIRCUIT_OPEN:
        break;
    }
}

void circuit_abandon(struct circuit *c)
{
    if (c->state == CIRCUIT_HALF_OPEN) {
        /* Back to open; opened_at_ms is unchanged, so the reset has already been served and
         * the next try becomes the trial. */
        c->state = CIRCUIT_OPEN;
    }
}

int64_t circuit_retry_in_ms(const struct circuit *c, int64_t now_ms)
{
    if (c->state == CIRCUIT_HALF_OPEN)
        return c->reset_ms;
    if (c->state != CIRCUIT_OPEN)
        return 0;
    int64_t left = c->opened_at_ms + c->reset_ms - now_ms;
    return left > 0 ? left : 0;
}

const char *circuit_state_name(enum circuit_state s)
{
    static const char *const names[] = {
#define X(e, str) [e] = str,
        CIRCUIT_STATE_TABLE(X)
#undef X
    };
    if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[s];
}

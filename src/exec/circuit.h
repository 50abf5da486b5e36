/*
 * circuit.h - a circuit breaker for one host (SPEC section 7): a pure state
 * machine with time passed in, so it is tested with a table and knows
 * nothing of sockets or clocks.
 *
 *   closed    --`failures` failures in a row-->  open
 *   open      --`reset_ms` passed, one try----> half_open (that try is the trial)
 *   half_open --trial succeeds--> closed;  --trial fails--> open (reset starts again)
 *
 * While open, and while a trial is in flight, circuit_allow() says no: the
 * caller fails the try at once with "circuit open" and sends nothing.
 *
 * Caller-provided storage, no allocation; loop thread (not thread-safe).
 */
#ifndef BARAM_EXEC_CIRCUIT_H
#define BARAM_EXEC_CIRCUIT_H

#include <stdbool.h>
#include <stdint.h>

#define CIRCUIT_STATE_TABLE(X)                                                                     \
    X(CIRCUIT_CLOSED, "closed")                                                                    \
    X(CIRCUIT_OPEN, "open")                                                                        \
    X(CIRCUIT_HALF_OPEN, "half_open")

enum circuit_state {
#define X(e, s) e,
    CIRCUIT_STATE_TABLE(X)
#undef X
};

struct circuit {
    enum circuit_state state;
    int failures;         /* consecutive failures that open it; >= 1 */
    int64_t reset_ms;     /* how long it stays open before a trial; >= 0 */
    int streak;           /* consecutive failures seen while closed */
    int64_t opened_at_ms; /* when it last opened (meaningful when open) */
};

/* Starts closed. failures < 1 is taken as 1, reset_ms < 0 as 0. */
void circuit_init(struct circuit *c, int failures, int64_t reset_ms);
/* Changes the thresholds, keeping the state (the latest task's settings win). */
void circuit_configure(struct circuit *c, int failures, int64_t reset_ms);

/* May a request be sent now? true when closed; when open and reset_ms has passed since it
 * opened, true once: the circuit turns half_open and this request is the trial. false otherwise
 * (open, or half_open with the trial still out). */
bool circuit_allow(struct circuit *c, int64_t now_ms);
/* Reports the outcome of a request that was allowed. Closed: success clears the streak, a
 * failure extends it and opens the circuit when it reaches `failures`. Half_open: success
 * closes, failure opens again (reset_ms counts from now_ms). Open: ignored (a late answer of a
 * request sent before it opened). */
void circuit_record(struct circuit *c, bool ok, int64_t now_ms);
/* An allowed request ended with no outcome (cancelled): if it was the trial, the circuit goes
 * back to open with its reset already passed, so the next try becomes the trial. */
void circuit_abandon(struct circuit *c);

/* Milliseconds until a trial may go: open, what is left of reset_ms (0 if it may go now);
 * half_open, reset_ms (the trial's outcome is not known yet: if it fails, the circuit stays
 * open that long from then on); closed, 0. */
int64_t circuit_retry_in_ms(const struct circuit *c, int64_t now_ms);
const char *circuit_state_name(enum circuit_state s);

#endif

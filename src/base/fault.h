/*
 * fault.h - named fault points for tests (SQLite sqlite3FaultSim, curl
 * torture): FAULT(FP_STORE_COMMIT) is true when the test build was asked to
 * fail there, through BARAM_FAULT=NAME[,NAME...] in the environment. In
 * builds without BARAM_FAULTS it is the constant 0 and compiles away.
 */
#ifndef BARAM_BASE_FAULT_H
#define BARAM_BASE_FAULT_H

#include <stdbool.h>

#define FAULT_TABLE(X)                                                                             \
    X(FP_STORE_COMMIT)                                                                             \
    X(FP_STORE_SLOW_COMMIT)                                                                        \
    X(FP_STORE_OPEN)                                                                               \
    X(FP_SPAWN)                                                                                    \
    X(FP_SPAWN_E2BIG)                                                                              \
    X(FP_CRASH_AFTER_START)                                                                        \
    X(FP_STOP_IN_BATCH)                                                                            \
    X(FP_ADMIT_ANSWER_LOST)                                                                        \
    X(FP_WORKER_SLOW_CLAIM)                                                                        \
    X(FP_CRASH_AFTER_TAKE)                                                                         \
    X(FP_RETENTION_HOLD)

enum fault_point {
#define X(name) name,
    FAULT_TABLE(X)
#undef X
        FAULT_COUNT
};

#ifdef BARAM_FAULTS
bool fault__hit(enum fault_point fp);
#define FAULT(fp) fault__hit(fp)
#else
#define FAULT(fp) 0
#endif

#endif

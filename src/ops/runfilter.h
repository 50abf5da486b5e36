/*
 * runfilter.h - the filters of a list of runs across DAGs, read from what a
 * person wrote: `baram runs list --state --from --to` and GET /api/v1/runs
 * ?state=&dag=&from=&to= parse them here so the CLI and the API accept and
 * refuse the same words. Pure; any thread.
 */
#ifndef BARAM_OPS_RUNFILTER_H
#define BARAM_OPS_RUNFILTER_H

#include "base/compiler.h"
#include "store/store.h"

struct err;

/* Longest text a filter field may hold (longer is refused, not cut). */
#define RUNFILTER_ARG_MAX 256

/* Fills f (zeroed first) from the fields given; NULL leaves a field out, "" is refused (the
 * API reads an argument it cannot decode as ""). states: run state names separated by commas
 * ("failed,running"); from, to: logical dates as when_parse reads them ("2026-12-01" is
 * midnight UTC; "2026-12-01T10:00:00Z"), both ends included. names[4] name the fields in
 * messages (e.g. "state", "from", "to", "dag", or "--state", ...). 0, or -EINVAL with *e
 * naming the field and the rule (an unknown state gets a did-you-mean; from after to is
 * refused). f->dag_id is dag_id as given (borrowed). */
int runfilter_parse(struct run_filter *f, const char *dag_id, const char *states, const char *from,
                    const char *to, const char *const names[4], struct err *e) WARN_UNUSED;

#endif

/* The end of a run on stdout: the human report (figures, latency
 * percentiles corrected and uncorrected, statuses, replay, failover,
 * verdict) or, with --json, the same figures as one JSON object on a line. */
#ifndef PT_BENCH_REPORT_H
#define PT_BENCH_REPORT_H

#include "bench.h"
#include "verdict.h"

/* v: the verdict, NULL after --floor (there is none). */
void report_print(const bench *b, const pt_verdict *v);

#endif

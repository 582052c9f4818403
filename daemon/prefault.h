/* The prefault thread: faults in, ahead of the engine, the ranges its big
 * blocks will take next (bigmem.h), so that a loop turn does not wait for
 * the kernel to zero a fresh huge page (3-25 ms each on the VMs measured in
 * BENCHMARKS.md, ~0.1 ms on a warm host). It touches one word per 4 KiB
 * with an atomic compare-and-swap of 0 with 0, so a word the engine has
 * already written stays as it is, and it is idle-scheduled, so it only
 * uses CPU that nothing else wants. Ranges queue up to a bound; past it,
 * or when the machine is busy, the engine faults those pages itself, as
 * without this thread. A forked child (the snapshot writer) has no sink. */
#ifndef PT_PREFAULT_H
#define PT_PREFAULT_H

#include <stdbool.h>
#include <stdint.h>

/* Whether a page fault here takes the address space's lock: before Linux
 * 6.4 (per-VMA locks) it does, and this thread, preempted inside a fault
 * on a busy machine, would hold up the loop's next mmap or brk for as long
 * as an idle-priority thread waits for a core. "auto" starts the thread
 * only when this is false. */
bool pt_prefault_fault_locks_mm(void);
/* Starts the thread and makes it the engine's sink; 0, or -1 (logged). */
int pt_prefault_start(void);
/* Bytes touched so far, and ranges dropped because the queue was full. */
void pt_prefault_stats(uint64_t *touched_bytes, uint64_t *dropped);
/* Detaches the sink and joins the thread (a range in progress finishes). */
void pt_prefault_stop(void);

#endif

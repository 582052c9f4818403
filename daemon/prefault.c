#include "prefault.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "bigmem.h"
#include "log.h"

#ifndef SCHED_IDLE
#define SCHED_IDLE 5 /* Linux; <sched.h> names it only under _GNU_SOURCE */
#endif

#define QUEUE 256 /* ranges waiting; each is 2 MiB or more */

/* One producer at a time (bigmem's sink, called under bigmem's lock: the
 * engine's thread, or a recovery's restore on a worker) and one consumer
 * (the thread): a ring with atomic ends and a semaphore to sleep on, so
 * the engine never waits for a lock that an idle-scheduled thread,
 * preempted, could be holding. */
static struct {
  struct { uint8_t *p; size_t len; } q[QUEUE];
  unsigned head, tail; /* free-running; tail - head ranges waiting */
  sem_t ready;
  bool stop, running;
  pthread_t thread;
  uint64_t dropped; /* the engine's thread only */
  uint64_t touched; /* bytes; written by the thread */
} P;

static void sink(void *ctx, void *p, size_t len) {
  (void)ctx;
  unsigned tail = P.tail, head = __atomic_load_n(&P.head, __ATOMIC_ACQUIRE);
  if (tail - head == QUEUE) { /* full: the engine faults these itself */
    P.dropped++;
    return;
  }
  P.q[tail % QUEUE].p = p, P.q[tail % QUEUE].len = len;
  __atomic_store_n(&P.tail, tail + 1, __ATOMIC_RELEASE);
  sem_post(&P.ready);
}

/* Faults in p[0..len) by touching one word in every 4 KiB: a
 * compare-and-swap of 0 with 0, which leaves a word the engine has written
 * in the meantime as it is (an atomic read-modify-write cannot lose a
 * concurrent store), so the engine never waits for this thread. A touch
 * faults under the VMA's own lock (Linux 6.4) and takes no lock the
 * engine's mmap or brk waits for; MADV_POPULATE_WRITE takes the address
 * space's lock (measured: with this thread idle-scheduled and preempted
 * inside it, the loop stalled for milliseconds). */
static void touch(uint8_t *p, size_t len) {
  for (size_t off = 0; off < len; off += 4096) {
    uint64_t zero = 0;
    __atomic_compare_exchange_n((uint64_t *)(void *)(p + off), &zero, 0, false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
  }
}

/* SCHED_IDLE: it runs only on a core with nothing else to run, so it never
 * takes CPU from the loop; when the machine is busy it falls behind and
 * the engine faults those pages itself, as without it. */
static void *run(void *arg) {
  (void)arg;
  struct sched_param sp = {0};
  (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
  for (;;) {
    while (sem_wait(&P.ready) && errno == EINTR) {}
    if (__atomic_load_n(&P.stop, __ATOMIC_ACQUIRE)) return NULL;
    unsigned head = P.head;
    if (head == __atomic_load_n(&P.tail, __ATOMIC_ACQUIRE)) continue;
    uint8_t *p = P.q[head % QUEUE].p;
    size_t len = P.q[head % QUEUE].len;
    __atomic_store_n(&P.head, head + 1, __ATOMIC_RELEASE);
    for (size_t off = 0; off < len && !__atomic_load_n(&P.stop, __ATOMIC_RELAXED); off += PT_BIG_MIN) {
      size_t step = len - off < PT_BIG_MIN ? len - off : PT_BIG_MIN;
      touch(p + off, step);
      __atomic_fetch_add(&P.touched, step, __ATOMIC_RELAXED);
    }
  }
}

bool pt_prefault_fault_locks_mm(void) {
  struct utsname u;
  unsigned major = 0, minor = 0;
  if (uname(&u) || sscanf(u.release, "%u.%u", &major, &minor) != 2) return true;
  return major < 6 || (major == 6 && minor < 4);
}

void pt_prefault_stats(uint64_t *touched_bytes, uint64_t *dropped) {
  *touched_bytes = __atomic_load_n(&P.touched, __ATOMIC_RELAXED);
  *dropped = P.dropped;
}

static void forked_child(void) { pt_big_set_prefault(NULL, NULL); }

int pt_prefault_start(void) {
  static bool atfork;
  if (P.running) return 0;
  P.stop = false, P.head = P.tail = 0;
  if (sem_init(&P.ready, 0, 0)) {
    pt_warn("prefault: no semaphore (%s): the engine's pages are faulted on first touch", strerror(errno));
    return -1;
  }
  int rc = pthread_create(&P.thread, NULL, run, NULL);
  if (rc) {
    sem_destroy(&P.ready);
    pt_warn("prefault: no thread (%s): the engine's pages are faulted on first touch", strerror(rc));
    return -1;
  }
  if (!atfork) atfork = pthread_atfork(NULL, NULL, forked_child) == 0;
  P.running = true;
  pt_big_set_prefault(sink, NULL);
  return 0;
}

void pt_prefault_stop(void) {
  if (!P.running) return;
  pt_big_set_prefault(NULL, NULL);
  __atomic_store_n(&P.stop, true, __ATOMIC_RELEASE);
  sem_post(&P.ready);
  pthread_join(P.thread, NULL);
  sem_destroy(&P.ready);
  P.running = false;
}

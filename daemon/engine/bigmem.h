/* Large zeroed blocks (hash-table slot arrays, hold pages, record-store
 * chunks) on transparent huge pages where the kernel offers them, carved
 * from one arena so that their pages can be faulted in before the engine
 * touches them.
 *
 * The engine's tables are read at random: with 4 KiB pages a lookup in a
 * table of millions costs a TLB miss and a page walk on top of the cache
 * miss. A block of PT_BIG_MIN bytes or more comes from an arena: one
 * MAP_NORESERVE reservation of address space the size of physical memory,
 * 2 MiB aligned and marked MADV_HUGEPAGE (THP "madvise" mode, Debian's
 * default, honours it; "never" ignores it harmlessly). Blocks are handed
 * out first-fit from freed ranges, else from the arena's end; a freed
 * block's pages go back to the kernel (MADV_DONTNEED) and its range is
 * reused. Without the arena (the reservation refused, e.g. strict
 * overcommit, or the arena full) a block is its own mapping, as the
 * arena's blocks are. Smaller blocks come from malloc. The caller gives
 * the size back when freeing.
 *
 * The first touch of a huge page is a fault that zeroes 2 MiB: ~0.1 ms on
 * a warm machine, 3-25 ms in a VM whose host backs guest memory lazily, a
 * stall for every request of that loop turn. pt_big_set_prefault names a
 * sink (the daemon's prefault thread, prefault.h) for ranges the engine
 * will touch soon: each freed range, and past the arena's end the next
 * PT_BIG_AHEAD bytes or an eighth of what it has carved, whichever is
 * more. The sink may fault pages in but must leave their contents as they
 * are: the engine may own a range by the time it gets to it.
 *
 * Any thread: one lock (a recovery builds its engine on a worker thread
 * while the loop's engine lives on); the sink is called under it, so it
 * hears one producer at a time. A fork (the mirror's snapshot child) is
 * safe: the lock is held across it, and since Linux 5.8 a copy-on-write
 * fault on a huge page copies 4 KiB. */
#ifndef PT_BIGMEM_H
#define PT_BIGMEM_H

#include <stdbool.h>
#include <stddef.h>

#define PT_BIG_MIN ((size_t)2 << 20)
#define PT_BIG_AHEAD ((size_t)64 << 20) /* the least announced past the arena's end */

/* n zeroed bytes; out of memory is fatal (xalloc.h). */
void *pt_big_alloc(size_t n);
/* Frees a block from pt_big_alloc(n), with the same n. NULL is ignored. */
void pt_big_free(void *p, size_t n);
/* Bytes of blocks of PT_BIG_MIN or more that are live now (malloc's
 * statistics do not see them); for memory accounting. */
size_t pt_big_bytes(void);

/* Whether p is in the arena (else its own mapping, or malloc's): for tests. */
bool pt_big_in_arena(const void *p);

/* Ranges the engine will touch soon go to sink (NULL: nowhere), from
 * pt_big_alloc and pt_big_free, under bigmem's lock. */
void pt_big_set_prefault(void (*sink)(void *ctx, void *p, size_t len), void *ctx);

#endif

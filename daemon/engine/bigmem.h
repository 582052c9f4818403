/* Large zeroed blocks (hash-table slot arrays, hold pages, record-store
 * chunks) on transparent huge pages where the kernel offers them.
 *
 * The engine's tables are read at random: with 4 KiB pages a lookup in a
 * table of millions costs a TLB miss and a page walk on top of the cache
 * miss, and every first touch of a page is a fault. A block of
 * PT_BIG_MIN bytes or more is its own mapping, aligned to 2 MiB and marked
 * MADV_HUGEPAGE (THP "madvise" mode, Debian's default, honours it; "never"
 * ignores it harmlessly). Smaller blocks come from malloc. The caller gives
 * the size back when freeing. A fork (the mirror's snapshot child) is
 * safe: since Linux 5.8 a copy-on-write fault on a huge page copies 4 KiB. */
#ifndef PT_BIGMEM_H
#define PT_BIGMEM_H

#include <stddef.h>

#define PT_BIG_MIN ((size_t)2 << 20)

/* n zeroed bytes; out of memory is fatal (xalloc.h). */
void *pt_big_alloc(size_t n);
/* Frees a block from pt_big_alloc(n), with the same n. NULL is ignored. */
void pt_big_free(void *p, size_t n);
/* Bytes mapped by blocks of PT_BIG_MIN or more that are live now (malloc's
 * statistics do not see them); for memory accounting. */
size_t pt_big_bytes(void);

#endif

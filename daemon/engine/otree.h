/* Order-statistic treaps over one pool of nodes addressed by 32-bit indices.
 * Keys are unique within a tree. Insert, remove, rank (how many keys are
 * smaller) and select (the node of a given rank) are O(log n) expected.
 * Used by AUTO matching (group.c): one tree of open groups per member
 * count, and one tree per user of the groups the user sits in, so "the
 * first group in this bucket that the user is not in" is a binary search
 * over ranks whatever the number of the user's groups. */
#ifndef PT_OTREE_H
#define PT_OTREE_H

#include <stdbool.h>
#include <stdint.h>

#define PT_ONIL UINT32_MAX

typedef struct pt_onode {
  uint32_t l, r, size, prio;
  uint64_t key;
  uint32_t val, spare;
} pt_onode;

typedef struct pt_opool {
  pt_onode *v;
  uint32_t n, cap, free_head, rng;
} pt_opool;

void pt_opool_init(pt_opool *p);
void pt_opool_free(pt_opool *p);
/* A new node (not in any tree). Indices stay valid; pointers may not. */
uint32_t pt_onode_new(pt_opool *p, uint64_t key, uint32_t val);
void pt_onode_release(pt_opool *p, uint32_t i);

void pt_otree_insert(pt_opool *p, uint32_t *root, uint32_t node);
/* Unlinks the node with this key and returns it (PT_ONIL if absent). */
uint32_t pt_otree_remove(pt_opool *p, uint32_t *root, uint64_t key);
static inline uint32_t pt_otree_size(const pt_opool *p, uint32_t root) {
  return root == PT_ONIL ? 0 : p->v[root].size;
}
uint32_t pt_otree_rank(const pt_opool *p, uint32_t root, uint64_t key);
bool pt_otree_has(const pt_opool *p, uint32_t root, uint64_t key);
uint32_t pt_otree_select(const pt_opool *p, uint32_t root, uint32_t i);

#endif

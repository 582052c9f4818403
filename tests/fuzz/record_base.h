/* The engine the record fuzzer's records apply to, and the seeds made for
 * it (make_seeds.c): a flash sale and a group buy already there, as after
 * a snapshot, so that a record mutated out of its campaign's create still
 * reaches reserves, joins and their expiries. Records after it begin at
 * seq 1 (the snapshot's record is 0). Both sides include this one file: a
 * base changed in one place only would refuse every seed. */
#ifndef PT_RECORD_BASE_H
#define PT_RECORD_BASE_H

#include "engine.h"
#include "input.h"

#define RB_T0 1000 /* the base's clock: records go on from it */
/* Records of one fuzz input, as several XRANGE entries would be: split on
 * this. 0xc1 is the one byte msgpack never uses, so a record holds it only
 * inside a byte string. */
#define RB_SEP "\xc1REC"
#define RB_SEP_LEN 4

static inline pt_engine *rb_engine(void) {
  pt_engine_config cfg = {.idem_window_ms = 60000, .max_remembered = 1000, .hash_seed = 5};
  pt_engine *e = pt_engine_new(&cfg);
  pt_input c1 = {.kind = PT_IN_CREATE, .now = RB_T0, .request_id = {(const uint8_t *)"b1", 2},
                 .spec = {.id = {(const uint8_t *)"c1", 2}, .kind = PT_FLASH_SALE, .stock = 3,
                          .per_user_limit = 2, .hold_ms = 1000, .waitlist = true}};
  pt_input g1 = {.kind = PT_IN_CREATE, .now = RB_T0, .request_id = {(const uint8_t *)"b2", 2},
                 .spec = {.id = {(const uint8_t *)"g1", 2}, .kind = PT_GROUP_BUY, .stock = 6,
                          .hold_ms = 1000, .group_size = 2, .group_ttl_ms = 5000}};
  pt_result r;
  pt_input_apply(e, &c1, &r);
  pt_input_apply(e, &g1, &r);
  return e;
}

#endif

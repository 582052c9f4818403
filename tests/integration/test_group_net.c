/* Group buys over real TCP against a real pintuand: subscribers receive the
 * same completion; a group that misses its deadline returns its stock and
 * emits a failure; filters; bad join requests. The daemon runs on a test
 * clock (see harness.h): deadlines pass when the test moves the time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define OK PINTUAN__V1__STATUS__OK
#define AUTO PINTUAN__V1__JOIN_MODE__JOIN_AUTO
#define OPEN PINTUAN__V1__JOIN_MODE__JOIN_OPEN
#define JOIN PINTUAN__V1__JOIN_MODE__JOIN_GROUP

static pt_daemon D;

static int start(void **state) {
  (void)state;
  return daemon_start(&D, NULL);
}
static int stop(void **state) {
  (void)state;
  return daemon_stop(&D);
}

static pintuan_client *subscriber(const char *const *campaigns) {
  pintuan_client *c = connect_or_die(&D);
  pintuan_response *r;
  assert_int_equal(pintuan_subscribe(c, campaigns, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  return c;
}

/* Waits for the next pushed event (an event: no sleeping). */
static pintuan_response *next_event(pintuan_client *c) {
  for (;;) {
    pintuan_response *r;
    assert_int_equal(pintuan_recv(c, &r), 0);
    if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_EVENT) return r;
    pintuan_response_free(r);
  }
}

static void test_two_subscribers_see_the_same_completion(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_group(c, "gb", 10, 3, 60000, 60000, 0), OK);
  const char *only_gb[] = {"gb", NULL};
  pintuan_client *s1 = subscriber(NULL), *s2 = subscriber(only_gb);
  const char *users[3] = {"ann", "ben", "cat"};
  uint64_t seats[3], gid = 0;
  for (int i = 0; i < 3; i++) {
    pintuan_response *r;
    char rid[16];
    snprintf(rid, sizeof rid, "j-%d", i);
    assert_int_equal(pintuan_join(c, "gb", users[i], AUTO, 0, 1, rid, &r), 0);
    assert_int_equal(r->status, OK);
    if (i == 0) gid = r->reservation->group_id;
    assert_int_equal(r->reservation->group_id, gid); /* AUTO fills the open group */
    seats[i] = r->reservation->reservation_id;
    pintuan_response_free(r);
  }
  for (int i = 0; i < 3; i++) {
    pintuan_response *r;
    char rid[16];
    snprintf(rid, sizeof rid, "pay-%d", i);
    assert_int_equal(pintuan_confirm(c, "gb", seats[i], users[i], rid, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  pintuan_response *e1 = next_event(s1), *e2 = next_event(s2);
  assert_int_equal(e1->id, 0);
  assert_int_equal(e1->event->type, PINTUAN__V1__EVENT_TYPE__GROUP_COMPLETED);
  assert_int_equal(e2->event->type, PINTUAN__V1__EVENT_TYPE__GROUP_COMPLETED);
  assert_int_equal(e1->event->seq, e2->event->seq);
  assert_int_equal(e1->event->group_id, gid);
  assert_int_equal(e2->event->group_id, gid);
  assert_int_equal(e1->event->n_members, 3);
  assert_int_equal(e2->event->n_members, 3);
  for (int i = 0; i < 3; i++) {
    assert_memory_equal(e1->event->members[i].data, users[i], strlen(users[i]));
    assert_memory_equal(e2->event->members[i].data, users[i], strlen(users[i]));
  }
  pintuan_response_free(e1);
  pintuan_response_free(e2);
  pintuan_response *r;
  Pintuan__V1__Campaign *cp = get_campaign(c, "gb", &r);
  assert_int_equal(cp->sold, 3);
  assert_int_equal(cp->available, 7);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_group(c, "gb", gid, &r), 0);
  assert_int_equal(r->group->state, PINTUAN__V1__GROUP_STATE__GROUP_STATE_COMPLETED);
  assert_int_equal(r->group->n_members, 3);
  pintuan_response_free(r);
  /* a seat's reservation names its group and the group's state, as Join did */
  assert_int_equal(pintuan_get_reservation(c, "gb", seats[1], users[1], &r), 0);
  assert_int_equal(r->status, OK);
  assert_true(r->reservation->has_group_id);
  assert_int_equal(r->reservation->group_id, gid);
  assert_true(r->reservation->has_group_state);
  assert_int_equal(r->reservation->group_state, PINTUAN__V1__GROUP_STATE__GROUP_STATE_COMPLETED);
  assert_int_equal(r->reservation->state, PINTUAN__V1__HOLD_STATE__SOLD);
  pintuan_response_free(r);
  /* subscribing to a campaign that does not exist says so */
  const char *nosuch[] = {"nosuch", NULL};
  assert_int_equal(pintuan_subscribe(c, nosuch, &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND);
  pintuan_response_free(r);
  pintuan_close(s1);
  pintuan_close(s2);
  pintuan_close(c);
}

static void test_missed_deadline_fails_and_returns_stock(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_group(c, "late", 5, 3, 300, 60000, 0), OK);
  assert_int_equal(create_group(c, "other", 5, 2, 60000, 60000, 0), OK);
  const char *only_late[] = {"late", NULL}, *only_other[] = {"other", NULL};
  pintuan_client *s = subscriber(only_late), *quiet = subscriber(only_other);
  pintuan_response *a, *b, *r;
  assert_int_equal(pintuan_join(c, "late", "ann", OPEN, 0, 1, "l-1", &a), 0);
  assert_int_equal(a->status, OK);
  assert_int_equal(pintuan_join(c, "late", "ben", JOIN, a->reservation->group_id, 1, "l-2", &b), 0);
  assert_int_equal(b->status, OK);
  assert_int_equal(pintuan_confirm(c, "late", a->reservation->reservation_id, "ann", "l-pay", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  Pintuan__V1__Campaign *cp = get_campaign(c, "late", &r);
  assert_int_equal(cp->held, 2);
  pintuan_response_free(r);
  /* the deadline is 300 ms after the group opened, on the daemon's clock:
   * a millisecond before it the group is still open */
  int64_t deadline = D.now + 300;
  advance_time(&D, c, 299);
  assert_int_equal(pintuan_get_group(c, "late", a->reservation->group_id, &r), 0);
  assert_int_equal(r->group->state, PINTUAN__V1__GROUP_STATE__GROUP_STATE_OPEN);
  pintuan_response_free(r);
  /* at the deadline the group fails: await the event */
  advance_time(&D, c, 1);
  pintuan_response *e = next_event(s);
  assert_int_equal(e->event->type, PINTUAN__V1__EVENT_TYPE__GROUP_FAILED);
  assert_int_equal(e->event->group_id, a->reservation->group_id);
  assert_int_equal(e->event->n_members, 2);
  assert_int_equal(e->event->at_ms, deadline);
  pintuan_response_free(e);
  cp = get_campaign(c, "late", &r);
  assert_int_equal(cp->available, 5); /* paid and unpaid units alike */
  assert_int_equal(cp->held, 0);
  assert_int_equal(cp->sold, 0);
  pintuan_response_free(r);
  assert_int_equal(pintuan_confirm(c, "late", b->reservation->reservation_id, "ben", "l-pay2", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__GROUP_CLOSED);
  pintuan_response_free(r);
  /* the subscriber of another campaign got nothing: a ping comes back first */
  assert_int_equal(pintuan_ping(quiet, &r), 0);
  assert_int_equal(r->result_case, PINTUAN__V1__RESPONSE__RESULT_PONG);
  pintuan_response_free(r);
  pintuan_response_free(a);
  pintuan_response_free(b);
  pintuan_close(s);
  pintuan_close(quiet);
  pintuan_close(c);
}

static void test_bad_joins(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_group(c, "g", 5, 2, 60000, 60000, 1), OK);
  pintuan_response *r;
  /* missing mode (what the library never sends: the field taken out),
   * JOIN without a group id, unknown group */
  pintuan_request q;
  Pintuan__V1__Join m;
  pintuan_req_join(&q, &m, "g", "u", JOIN, 0, true, "bad-1");
  m.has_mode = 0;
  assert_int_equal(pintuan_call(c, &q, &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "mode"));
  pintuan_response_free(r);
  assert_int_equal(pintuan_join(c, "g", "u", JOIN, 0, true, "bad-1", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "group_id"));
  pintuan_response_free(r);
  assert_int_equal(pintuan_join(c, "g", "u", JOIN, 12345, 1, "bad-2", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND);
  pintuan_response_free(r);
  /* a flash-sale operation on a group buy, a join on a flash sale */
  assert_int_equal(pintuan_reserve(c, "g", "u", 1, "bad-3", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  pintuan_response_free(r);
  assert_int_equal(create_flash(c, "f", 5, 0, 1000, 0), OK);
  assert_int_equal(pintuan_join(c, "f", "u", AUTO, 0, 1, "bad-4", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  pintuan_response_free(r);
  /* over the limit of one group */
  assert_int_equal(pintuan_join(c, "g", "u", OPEN, 0, 1, "ok-1", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(pintuan_join(c, "g", "u", OPEN, 0, 1, "ok-2", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__LIMIT_EXCEEDED);
  pintuan_response_free(r);
  /* too many subscription filters */
  const char *many[70];
  for (int i = 0; i < 65; i++) many[i] = "g";
  many[65] = NULL;
  assert_int_equal(pintuan_subscribe(c, many, &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  pintuan_response_free(r);
  Pintuan__V1__Campaign *cp = get_campaign(c, "g", &r);
  assert_int_equal(cp->held, 1);
  pintuan_response_free(r);
  pintuan_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_two_subscribers_see_the_same_completion, start, stop),
      cmocka_unit_test_setup_teardown(test_missed_deadline_fails_and_returns_stock, start, stop),
      cmocka_unit_test_setup_teardown(test_bad_joins, start, stop),
  };
  return cmocka_run_group_tests_name("group_net", tests, NULL, NULL);
}

/* The Lua library of Redis Functions the mirror calls (pintuan_acquire,
 * pintuan_renew, pintuan_release, pintuan_append, pintuan_snapshot_commit)
 * and the shard's key names. */
#ifndef PT_FUNCTIONS_H
#define PT_FUNCTIONS_H

extern const char pt_redis_functions[];       /* library pintuan: lease and fenced writes */
extern const char pt_redis_shard_functions[]; /* library pintuan_shard: the shard's identity */

/* Each library's version, which its function pintuan_version (and
 * pintuan_shard_version) returns: raised whenever a function is added, so
 * a newer library serves an older daemon. A daemon whose Redis user may not
 * FUNCTION LOAD (a Redis ACL user limited to its shard, deploy/redis-acl.sh)
 * uses the libraries an administrator loaded, if theirs are this version or
 * newer. */
#define PT_FUNCTIONS_VERSION 2
#define PT_SHARD_FUNCTIONS_VERSION 2

/* Keys of a shard: "pintuan:{SHARD}:NAME". */
#define PT_KEY_LEASE "lease"       /* "EPOCH NODE ADDR", PX lease_ms */
#define PT_KEY_EPOCH "epoch"       /* counter: epochs only grow */
#define PT_KEY_JOURNAL "journal"   /* stream: one entry per loop turn, id SEQ-1 */
#define PT_KEY_SEQ "seq"           /* the last journal record appended */
#define PT_KEY_EVENTS "events"     /* stream of events for storefronts, capped */
#define PT_KEY_SNAPSHOT "snapshot" /* hash: seq, chunks, bytes, format, prefix, epoch, sum */
#define PT_KEY_SHARD "shard"       /* hash: id, created_ms, created_by (the incarnation) */

#endif

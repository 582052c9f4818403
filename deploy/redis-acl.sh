#!/usr/bin/env bash
# A Redis ACL user for one pintuan shard, made by a Redis administrator:
# it may touch only the shard's keys (pintuan:{SHARD}:*), call functions,
# and run the few commands pintuand sends (and its functions call); it may
# not load functions, read other keys, publish, configure, flush or
# debug. The functions are loaded here, by the administrator, since that
# user may not (pintuand then checks their version: functions.h).
#
#   deploy/redis-acl.sh SHARD USER PASSWORD_FILE [redis-cli options...]
#
# PASSWORD_FILE holds the user's password (its first line; Redis keeps only
# its SHA-256). The redis-cli options reach Redis as its administrator, e.g.
# -h 10.0.0.5 -p 6379 --user admin (and REDISCLI_AUTH=... in the
# environment: no password on the command line). $PINTUAND is the daemon
# whose functions are loaded (default: pintuand on PATH). Then give the
# daemon [mirror] redis_user = USER and redis_password_file = PASSWORD_FILE.
#
# The user lives in Redis' memory: it prints the line to keep it across a
# restart (an aclfile's line, or redis.conf's), and runs ACL SAVE when Redis
# has an aclfile. Idempotent: run it again to change the password.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 64
fi
shard=$1 user=$2 pwfile=$3
shift 3
case $shard in *[!A-Za-z0-9_.-]*|'') echo "redis-acl.sh: bad shard name '$shard'" >&2; exit 64 ;; esac
case $user in *[!A-Za-z0-9_.-]*|'') echo "redis-acl.sh: bad user name '$user'" >&2; exit 64 ;; esac
pw=$(head -n 1 "$pwfile" | tr -d '\r\n')
[ -n "$pw" ] || { echo "redis-acl.sh: $pwfile: no password in its first line" >&2; exit 65; }
hash=$(printf '%s' "$pw" | sha256sum | cut -d' ' -f1)
pintuand=${PINTUAND:-pintuand}

# What pintuand sends, and what its functions call (a function runs with
# the caller's permissions): nothing more.
rules=(reset on "#$hash" "~pintuan:{$shard}:*" resetchannels -@all
       +auth +ping +fcall +fcall_ro +get +set +hmget +xrange +unlink
       +del +exists +hget +hset +incr +pexpire +time +xadd +xtrim)

cli() { redis-cli "$@"; }
out=$(cli "$@" ACL SETUSER "$user" "${rules[@]}")
[ "$out" = OK ] || { echo "redis-acl.sh: ACL SETUSER: $out" >&2; exit 69; }
for lib in pintuan pintuan_shard; do
  out=$("$pintuand" --print-functions "$lib" | cli "$@" -x FUNCTION LOAD REPLACE)
  [ "$out" = "$lib" ] || { echo "redis-acl.sh: FUNCTION LOAD $lib: $out" >&2; exit 69; }
done
if [ -n "$(cli "$@" CONFIG GET aclfile | sed -n 2p)" ]; then
  out=$(cli "$@" ACL SAVE)
  [ "$out" = OK ] || { echo "redis-acl.sh: ACL SAVE: $out" >&2; exit 69; }
  echo "user $user saved to Redis' aclfile"
else
  echo "user $user made; to keep it across a Redis restart, add to redis.conf:"
  echo "  user $user ${rules[*]:1}"
fi
echo "functions pintuan and pintuan_shard loaded; give pintuand [mirror] redis_user = $user"
echo "and redis_password_file = $pwfile"

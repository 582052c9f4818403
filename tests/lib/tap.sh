# Sourced by the TAP test scripts: `check WHAT CMD...` prints "ok N - WHAT"
# when CMD succeeds, else "not ok N - WHAT"; `tap_end` prints the plan and
# returns non-zero if any check failed.
n=0 failed=0
check() {
  local what=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $what"; else failed=$((failed + 1)); echo "not ok $n - $what"; fi
}
tap_end() {
  echo "1..$n"
  [ "$failed" -eq 0 ]
}

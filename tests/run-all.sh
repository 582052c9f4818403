#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the release and the
# AddressSanitizer+UndefinedBehaviorSanitizer configurations, runs every test
# in both, runs the fuzzers for a bounded time (a clang configuration), and
# ends with "N passed, N failed" (non-zero exit on any failure).
set -uo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
# Sets up (or reconfigures) and builds one configuration, warnings as
# errors: 0 when it built.
build_config() { # dir, meson setup args...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" -Dwerror=true "$@" >/dev/null || { failed=$((failed + 1)); echo "setup of $dir failed"; return 1; }
  else
    meson configure "$dir" -Dwerror=true "$@" >/dev/null || { failed=$((failed + 1)); echo "configure of $dir failed"; return 1; }
  fi
  if ! meson compile -C "$dir" >"$dir.compile.log" 2>&1; then
    cat "$dir.compile.log"; failed=$((failed + 1)); echo "build of $dir failed"; return 1
  fi
}
# A build type packagers use: it must build, warnings as errors (newer
# compilers warn differently at -O3 than at -O2).
compile_only() { # dir, meson setup args...
  local dir=$1
  build_config "$@" || return
  passed=$((passed + 1))
  echo "[$dir] built"
}
run_config() { # dir, meson setup args...
  local dir=$1
  build_config "$@" || return
  meson test -C "$dir" --print-errorlogs --num-processes 2 ${PT_TEST_ARGS:-}
  read -r p f < <(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r != "SKIP": f += 1
print(p, f)
PY
)
  passed=$((passed + p)); failed=$((failed + f))
  echo "[$dir] $p passed, $f failed"
}

run_config build --buildtype=debugoptimized
if [ "${PT_SKIP_PACKAGER_BUILDS:-0}" != 1 ]; then
  compile_only build-release --buildtype=release
  compile_only build-plain --buildtype=plain
fi
if [ "${PT_SKIP_SANITIZE:-0}" != 1 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_config build-sanitize -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug
fi
# The fuzzers (clang, libFuzzer, ASan+UBSan), each for fuzz_seconds from
# its seed corpus: only the "fuzz" suite runs in this configuration.
if [ "${PT_SKIP_FUZZ:-0}" != 1 ]; then
  CC=clang UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 PT_TEST_ARGS="--suite fuzz ${PT_TEST_ARGS:-}" \
    run_config build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
      --buildtype=debugoptimized
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

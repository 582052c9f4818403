#!/bin/sh
# libpintuan exports its own API and nothing else: every defined dynamic
# symbol is a pintuan_ name (pintuan_* of pintuan.h, pintuan__v1__* of the
# generated protocol code); nothing of the pt_ static libraries it links
# (pt_common, ...), so a program can link the engine and the client both.
set -eu
lib=$1
# (an AddressSanitizer build adds an __odr_asan.NAME for each exported
# variable NAME: it is checked as NAME)
names=$(nm -D --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sed 's/^__odr_asan\.//')
[ -n "$names" ] || { echo "no exported symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$names" | grep -v '^pintuan_' || true)
if [ -n "$bad" ]; then
  echo "exported from $lib without the pintuan_ prefix:"
  printf '%s\n' "$bad"
  exit 1
fi
printf '%s\n' "$names" | grep -qx 'pintuan_connect' || { echo "pintuan_connect not exported"; exit 1; }
echo "$(printf '%s\n' "$names" | wc -l) symbols exported, all pintuan_"

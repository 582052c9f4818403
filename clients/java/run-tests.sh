#!/usr/bin/env bash
# Runs the Java client's JUnit 5 tests against real daemons:
#   run-tests.sh JARDIR [JUnit console launcher options...]
# JARDIR holds pintuan-client.jar and pintuan-client-tests.jar (build.sh
# JARDIR tests). PINTUAND must name build/daemon/pintuand; redis-server and
# openssl come from PATH. Exits 77 (skipped) when Java or a jar is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jars=${1:?usage: run-tests.sh JARDIR [launcher options]}
shift
PROTOBUF_JAR=${PROTOBUF_JAR:-/usr/share/java/protobuf.jar}
JUNIT_CONSOLE=${JUNIT_CONSOLE:-/usr/share/java/junit-platform-console-standalone.jar}
missing=(${PINTUAN_JAVA_MISSING:-})
for t in java javac; do command -v "$t" >/dev/null || missing+=("$t"); done
for f in "$PROTOBUF_JAR" "$JUNIT_CONSOLE" "$jars/pintuan-client.jar" "$jars/pintuan-client-tests.jar"; do
  [ -f "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "java client tests: skipped, missing: ${missing[*]} (apt-get install openjdk-17-jdk-headless protobuf-compiler libprotobuf-java junit5, then meson setup --reconfigure)"
  exit 77
fi
: "${PINTUAND:?set PINTUAND to build/daemon/pintuand}"
export PINTUAN_JAR="$jars/pintuan-client.jar" PROTOBUF_JAR
export PINTUAN_JAVA_README=${PINTUAN_JAVA_README:-$here/README.md}
# no selection given: every test
[ $# -gt 0 ] || set -- --select-package io.pintuan.client
exec java -jar "$JUNIT_CONSOLE" \
  --class-path "$jars/pintuan-client.jar:$jars/pintuan-client-tests.jar:$PROTOBUF_JAR" \
  --disable-banner --disable-ansi-colors --details=tree --details-theme=ascii --fail-if-no-tests "$@"

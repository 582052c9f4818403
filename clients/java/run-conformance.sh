#!/usr/bin/env bash
# meson's 'conformance_java' test (clients/java/meson.build, suite
# 'conformance'): plays every tests/conformance/*.scn through the Java
# client with its conformance runner (io.pintuan.conformance.Runner in
# pintuan-conformance.jar, build.sh JARDIR tests) against this build's
# pintuand (PINTUAND), as conformance_c does through libpintuan. Exits 77
# (skipped) when Java or a jar is missing.
#   run-conformance.sh JARDIR CONFORMANCE_DIR
set -uo pipefail
jars=${1:?usage: run-conformance.sh JARDIR CONFORMANCE_DIR} conf=${2:?CONFORMANCE_DIR}
PROTOBUF_JAR=${PROTOBUF_JAR:-/usr/share/java/protobuf.jar}
missing=(${PINTUAN_JAVA_MISSING:-})
command -v java >/dev/null || missing+=(java)
for f in "$PROTOBUF_JAR" "$jars/pintuan-client.jar" "$jars/pintuan-conformance.jar"; do
  [ -f "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "java conformance runner: skipped, missing: ${missing[*]} (apt-get install openjdk-17-jdk-headless protobuf-compiler libprotobuf-java junit5, then meson setup --reconfigure)"
  exit 77
fi
: "${PINTUAND:?set PINTUAND to build/daemon/pintuand}"
shopt -s nullglob
scenarios=("$conf"/*.scn)
if [ ${#scenarios[@]} = 0 ]; then
  echo "no scenarios in $conf"
  exit 1
fi
exec java -cp "$jars/pintuan-conformance.jar:$jars/pintuan-client.jar:$PROTOBUF_JAR" \
  io.pintuan.conformance.Runner "$conf/ctl.sh" "${scenarios[@]}"

#!/usr/bin/env bash
# Builds the Java client with plain javac and jar (no Maven, no Gradle):
#   build.sh OUTDIR [tests]
# OUTDIR/pintuan-client.jar        io.pintuan.v1 (protoc --java_out of proto/pintuan.proto)
#                                  and io.pintuan.client; needs protobuf.jar at run time
# OUTDIR/pintuan-client-tests.jar  the JUnit 5 tests (with "tests")
# OUTDIR/pintuan-conformance.jar   the conformance runner, io.pintuan.conformance.Runner
#                                  (with "tests"; run-conformance.sh plays tests/conformance/ with it)
# Debian 12: openjdk-17-jdk-headless protobuf-compiler libprotobuf-java junit5.
# Exits 77 (meson's "skipped") when a tool or jar is missing, saying which.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUTDIR [tests]}
mkdir -p "$out"
out=$(cd "$out" && pwd)
PROTOBUF_JAR=${PROTOBUF_JAR:-/usr/share/java/protobuf.jar}
JUNIT_JAR=${JUNIT_JAR:-/usr/share/java/junit-jupiter-api.jar}
missing=()
for t in javac jar protoc; do command -v "$t" >/dev/null || missing+=("$t"); done
[ -f "$PROTOBUF_JAR" ] || missing+=("$PROTOBUF_JAR")
if [ "${2:-}" = tests ] && [ ! -f "$JUNIT_JAR" ]; then missing+=("$JUNIT_JAR"); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "java client: skipped, missing: ${missing[*]} (apt-get install openjdk-17-jdk-headless protobuf-compiler libprotobuf-java junit5)" >&2
  exit 77
fi
work=$(mktemp -d "$out/.java-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gen" "$work/classes"
protoc --proto_path="$root/proto" --java_out="$work/gen" "$root/proto/pintuan.proto"
find "$work/gen" "$here/src/main/java" -name '*.java' > "$work/sources"
javac --release 17 -encoding UTF-8 -nowarn -Xlint:none -cp "$PROTOBUF_JAR" -d "$work/classes" @"$work/sources"
printf 'Class-Path: %s\n' "$PROTOBUF_JAR" > "$work/manifest"
jar --create --file "$work/pintuan-client.jar" --manifest "$work/manifest" -C "$work/classes" .
mv "$work/pintuan-client.jar" "$out/pintuan-client.jar"
if [ "${2:-}" = tests ]; then
  mkdir -p "$work/test-classes"
  find "$here/src/test/java" -name '*.java' > "$work/test-sources"
  javac --release 17 -encoding UTF-8 -Xlint:all -Xlint:-serial -Xlint:-processing \
    -cp "$out/pintuan-client.jar:$PROTOBUF_JAR:$JUNIT_JAR" -d "$work/test-classes" @"$work/test-sources"
  jar --create --file "$work/pintuan-client-tests.jar" -C "$work/test-classes" .
  mv "$work/pintuan-client-tests.jar" "$out/pintuan-client-tests.jar"
  mkdir -p "$work/conformance-classes"
  find "$here/src/conformance/java" -name '*.java' > "$work/conformance-sources"
  javac --release 17 -encoding UTF-8 -Xlint:all -Xlint:-serial -Xlint:-processing \
    -cp "$out/pintuan-client.jar:$PROTOBUF_JAR" -d "$work/conformance-classes" @"$work/conformance-sources"
  printf 'Main-Class: io.pintuan.conformance.Runner\nClass-Path: pintuan-client.jar %s\n' "$PROTOBUF_JAR" \
    > "$work/conformance-manifest"
  jar --create --file "$work/pintuan-conformance.jar" --manifest "$work/conformance-manifest" \
    -C "$work/conformance-classes" .
  mv "$work/pintuan-conformance.jar" "$out/pintuan-conformance.jar"
fi

#!/usr/bin/env bash
# Installs the Debian 12 packages pintuan builds, tests and runs with.
# Idempotent: does nothing when everything is already there.
set -euo pipefail
PKGS=(build-essential pkg-config meson ninja-build python3
      libuv1-dev libhiredis-dev libmsgpack-dev libprotobuf-c-dev protobuf-c-compiler
      libinih-dev libjansson-dev libcmocka-dev libzstd-dev redis-server redis-tools
      libhttp-parser-dev libsystemd-dev libssl-dev openssl systemd prometheus help2man
      clang libclang-rt-14-dev)
PKGS+=(golang-go golang-google-protobuf-dev protoc-gen-go protobuf-compiler) # the Go client, clients/go
PKGS+=(openjdk-17-jdk-headless protobuf-compiler libprotobuf-java junit5) # the Java client (clients/java)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

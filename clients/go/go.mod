module pintuan.io/pintuan

go 1.19

require google.golang.org/protobuf v1.28.1

// Debian 12's golang-google-protobuf-dev: builds and tests run offline
// (GOPROXY=off). A program that imports pintuan.io/pintuan as a dependency
// ignores this line and uses its own (see README.md).
replace google.golang.org/protobuf => /usr/share/gocode/src/google.golang.org/protobuf

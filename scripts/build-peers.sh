#!/bin/sh
# Builds the test peers written in C (test/peers/*) into build/peers/ (git-ignored). Needs gcc and
# Debian's libmbedtls-dev (Mbed TLS 2.28). .ci/run calls it before `npm test`; the interop tests call it
# too when the binary is missing or older than its source.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build/peers
${CC:-gcc} -std=c11 -O2 -Wall -Wextra -Werror \
  -o build/peers/mbedtls-lwm2m-client test/peers/mbedtls-client/lwm2m-client.c \
  -lmbedtls -lmbedx509 -lmbedcrypto

#!/usr/bin/env bash
# Assembles the test guests into flat binaries: build.sh <output dir>
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$1"
mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
build() { # name load-address
  gcc -c -nostdlib -I"$HERE" -o "$TMP/$1.o" "$HERE/$1.S"
  ld -m elf_x86_64 -nostdlib -N -e entry -Ttext "$2" --oformat binary -o "$OUT/$1.bin" "$TMP/$1.o"
}
build realmode 0x7c00
build longmode 0x100000

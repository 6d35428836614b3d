#!/usr/bin/env bash
# Builds the test kernel ELF: build.sh <output file>
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$1"
mkdir -p "$(dirname "$OUT")"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie -no-pie -mno-red-zone -mgeneral-regs-only \
    -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -nostdlib -static \
    -Wl,-T,"$HERE/linker.ld" -Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments \
    -o "$OUT" "$HERE/entry.S" "$HERE/kernel.c"

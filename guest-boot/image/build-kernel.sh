#!/usr/bin/env bash
# Builds the dvmm default guest kernel from Debian's linux-source-6.1 with kernel.config, cached by the
# hash of this recipe: build-kernel.sh [cache dir]. Prints the cache directory holding bzImage and vmlinux.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SOURCE_PKG=linux-source-6.1
SOURCE_VERSION=6.1.192-3          # pinned; a newer Debian revision is used only if this one is gone
CACHE_ROOT="${1:-${DVMM_CACHE:-$HOME/.cache/dvmm}/images}"
HASH="$(cat "$HERE/kernel.config" "$HERE/build-kernel.sh" | sha256sum | cut -c1-16)"
OUT="$CACHE_ROOT/kernel-$HASH"
if [[ -f "$OUT/bzImage" && -f "$OUT/vmlinux" ]]; then echo "$OUT"; exit 0; fi
log() { echo "dvmm image: $*" >&2; }

need=()
for p in build-essential bc flex bison libelf-dev libssl-dev xz-utils cpio; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ! dpkg-query -W -f='${Status} ${Version}' "$SOURCE_PKG" 2>/dev/null | grep -q "install ok installed"; then
  if apt-cache show "$SOURCE_PKG=$SOURCE_VERSION" >/dev/null 2>&1; then need+=("$SOURCE_PKG=$SOURCE_VERSION");
  else log "warning: $SOURCE_PKG $SOURCE_VERSION is no longer offered; using the candidate version"; need+=("$SOURCE_PKG"); fi
fi
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
TARBALL="$(ls /usr/src/linux-source-6.1.tar.xz)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dvmm-kernel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log "unpacking $TARBALL"
tar -C "$WORK" -xf "$TARBALL"
cd "$WORK"/linux-source-6.1
log "configuring (tinyconfig + guest-boot/image/kernel.config)"
make -s tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m .config "$HERE/kernel.config" >/dev/null
make -s olddefconfig >/dev/null
# Every option we asked for must have survived olddefconfig (a missing dependency silently drops one).
while IFS= read -r line; do
  [[ "$line" =~ ^CONFIG_([A-Z0-9_]+)=(.*)$ ]] || continue
  want="${BASH_REMATCH[2]}"; name="CONFIG_${BASH_REMATCH[1]}"
  if [[ "$want" == n ]]; then ! grep -q "^$name=y" .config || { log "error: $name is still set (selected by another option)"; exit 1; }
  else grep -q "^$name=$want\$" .config || { log "error: $name=$want did not survive configuration"; exit 1; }; fi
done < "$HERE/kernel.config"
log "building with $(nproc) jobs (several minutes)"
start=$(date +%s)
make -s -j"$(nproc)" bzImage >/dev/null
log "built in $(( $(date +%s) - start )) s"
mkdir -p "$OUT.tmp"
cp arch/x86/boot/bzImage vmlinux .config "$OUT.tmp/"
dpkg-query -W -f='${Version}\n' "$SOURCE_PKG" > "$OUT.tmp/source-version"
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "$OUT"

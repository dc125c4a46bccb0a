#!/bin/bash
# Install the host tools the fleece fixture builder needs (idempotent; Debian/Ubuntu, run as root).
set -euo pipefail
PKGS=(debootstrap qemu-utils xfsprogs e2fsprogs fdisk rpm zstd db5.3-util)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "fleece tools: all present"; exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "fleece tools: installed ${missing[*]}"

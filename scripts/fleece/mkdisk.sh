#!/bin/bash
# Ported from the stackwatch shared reference recipe fleece-fixtures/mkdisk.sh (same authors, Apache-2.0);
# extended with MBR logical partitions.
#
# mkdisk.sh OUT.raw gpt|dos PART...   where PART = TYPE:FILE  or  TYPE:SIZE_MiB
#   gpt TYPEs: linux | lvm | bios | esp      dos TYPEs: linux | lvm | esp, or log-linux | log-lvm (logical)
# Lays out partitions 1MiB-aligned starting at 1MiB, writes the table with sfdisk directly on the
# regular file and copies each FILE into its partition with dd (sparse). No loop device, no mount.
# dos logical partitions all go into one extended partition (type 05) placed after the primaries;
# each logical partition is preceded by 1 MiB holding its EBR.
set -euo pipefail
OUT=$1; LABEL=$2; shift 2
declare -A GPT=( [linux]=0FC63DAF-8483-4772-8E79-3D69D8477DE4 [lvm]=E6D6D379-F507-44C2-A23C-238F2A3DF928
                 [bios]=21686148-6449-6E6F-744E-656564454649 [esp]=C12A7328-F81F-11D2-BA4B-00A0C93EC93B )
declare -A DOS=( [linux]=83 [lvm]=8e [esp]=ef [log-linux]=83 [log-lvm]=8e )
MiB=$((1024*1024))
size_of() { if [ -f "$1" ]; then echo $(( ( $(stat -c %s "$1") + MiB - 1 ) / MiB )); else echo "$1"; fi; }
# size of the extended partition: every logical partition plus its 1 MiB EBR gap
ext_total=0
for p in "$@"; do
  type=${p%%:*}; src=${p#*:}
  [[ $type == log-* ]] && ext_total=$(( ext_total + 1 + $(size_of "$src") ))
done
start=1   # MiB
table="label: $LABEL"$'\n'
[ "$LABEL" = gpt ] && table+="label-id: 6E1E0F0B-1D7A-4E5C-9E8A-F1EEC0FFEE00"$'\n'
[ "$LABEL" = dos ] && table+="label-id: 0xf1eec0de"$'\n'
copies=()
in_ext=0
for p in "$@"; do
  type=${p%%:*}; src=${p#*:}
  sz=$(size_of "$src")
  if [[ $LABEL == dos && $type == log-* ]]; then
    if [ $in_ext = 0 ]; then
      table+="start=$((start*2048)), size=$((ext_total*2048)), type=5"$'\n'
      in_ext=1
    fi
    start=$((start+1))
  fi
  [ -f "$src" ] && copies+=("$start:$src")
  if [ "$LABEL" = gpt ]; then t=${GPT[$type]}; else t=${DOS[$type]}; fi
  table+="start=$((start*2048)), size=$((sz*2048)), type=$t"$'\n'
  start=$((start+sz))
done
rm -f "$OUT"; truncate -s $(( (start+1) * MiB )) "$OUT"   # +1MiB for the backup GPT
printf '%s' "$table" | sfdisk -q "$OUT"
for c in "${copies[@]}"; do
  off=${c%%:*}; src=${c#*:}
  dd if="$src" of="$OUT" bs=1M seek="$off" conv=notrunc,sparse status=none
done
sfdisk -l "$OUT" >&2

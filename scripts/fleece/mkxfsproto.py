#!/usr/bin/env python3
# Ported from the stackwatch shared reference recipe fleece-fixtures/mkxfsproto.py (same authors, Apache-2.0).
"""Emit an xfsprogs (<= 6.x) protofile for a directory tree, for `mkfs.xfs -p`.

Limitations of the protofile format: no sticky bit, no xattrs/capabilities,
no timestamps (all files get mkfs time), hardlinks become copies, names with
whitespace cannot be expressed (they are skipped and reported on stderr).
"""

import os
import stat
import sys


def mode_str(st):
    m = st.st_mode
    t = {
        stat.S_IFREG: "-",
        stat.S_IFDIR: "d",
        stat.S_IFLNK: "l",
        stat.S_IFCHR: "c",
        stat.S_IFBLK: "b",
        stat.S_IFIFO: "p",
    }.get(stat.S_IFMT(m))
    if t is None:
        return None
    return t + ("u" if m & stat.S_ISUID else "-") + ("g" if m & stat.S_ISGID else "-") + "%03o" % (m & 0o777)


def walk(path, depth, out):
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        if any(c.isspace() for c in name) or name == "$":
            print(f"skip (whitespace): {p}", file=sys.stderr)
            continue
        st = os.lstat(p)
        ms = mode_str(st)
        if ms is None:
            print(f"skip (type): {p}", file=sys.stderr)
            continue
        ind = " " * depth
        head = f"{ind}{name} {ms} {st.st_uid} {st.st_gid}"
        if ms[0] == "-":
            out.write(f"{head} {p}\n")
        elif ms[0] == "l":
            tgt = os.readlink(p)
            if any(c.isspace() for c in tgt):
                print(f"skip (link target whitespace): {p}", file=sys.stderr)
                continue
            out.write(f"{head} {tgt}\n")
        elif ms[0] in "bc":
            out.write(f"{head} {os.major(st.st_rdev)} {os.minor(st.st_rdev)}\n")
        elif ms[0] == "p":
            out.write(f"{head}\n")
        else:
            out.write(f"{head}\n")
            walk(p, depth + 1, out)
            out.write(f"{ind}$\n")


def main():
    root = os.path.abspath(sys.argv[1])
    st = os.lstat(root)
    out = sys.stdout
    out.write("/dev/null\n0 0\n")
    out.write(f"{mode_str(st)} {st.st_uid} {st.st_gid}\n")
    walk(root, 1, out)
    out.write("$\n")


if __name__ == "__main__":
    main()

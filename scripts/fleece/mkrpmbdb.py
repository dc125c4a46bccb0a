#!/usr/bin/env python3
"""Write an rpm BerkeleyDB `Packages` database (RHEL <= 8 layout) from an rpm sqlite database.

Usage: mkrpmbdb.py RPMDB.SQLITE OUT/Packages

The header blobs are the ones real rpm wrote into rpmdb.sqlite (`rpm -i --justdb` of rpmbuild-made
packages); the file is written by BerkeleyDB itself (db5.3_load from Debian's db5.3-util), as a hash
database keyed by the 4-byte native-endian package number, as rpm's bdb backend keeps it. The page size
is 512 so every header (~1.2 KiB here) lands on overflow pages, the path real RHEL headers (tens of KiB)
take. build.py checks the result with rpm's own read-only BerkeleyDB backend (`rpm -qa`, bdb_ro).
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys

PAGESIZE = 512


def main(src: str, out: str) -> None:
    con = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    rows = con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    con.close()
    lines = ["VERSION=3", "format=bytevalue", "type=hash", f"db_pagesize={PAGESIZE}", "HEADER=END"]
    for hnum, blob in rows:
        lines += [" " + struct.pack("=I", hnum).hex(), " " + bytes(blob).hex()]
    lines.append("DATA=END")
    subprocess.run(["db5.3_load", out], input="\n".join(lines) + "\n", text=True, check=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

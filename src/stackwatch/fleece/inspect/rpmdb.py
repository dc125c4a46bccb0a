"""rpm packages: `rpmdb.sqlite` (RHEL 9+, Fedora 33+) and BerkeleyDB `Packages` (RHEL <= 8).

Both store one rpm header blob per package; we parse the blob ourselves (name, epoch, version,
release, arch tags). Why our own BerkeleyDB reader: the Python bindings for libdb are AGPL (v6+) and
rpm's own bdb_ro is C inside rpm; the hash-database pages rpm writes need only a page walk and
overflow chains, bounded here by the page count.
"""

from __future__ import annotations

import sqlite3
import struct
import tempfile
from pathlib import Path

from stackwatch.fleece.errors import CorruptImage

TAGS = {1000: "name", 1001: "version", 1002: "release", 1003: "epoch", 1022: "arch"}
MAX_DB = 512 << 20


def parse_header(blob: bytes) -> dict | None:
    """Name/epoch/version/release/arch from an rpm header blob (the 'immutable region' form)."""
    if len(blob) < 8:
        return None
    il, dl = struct.unpack_from(">II", blob)
    if il > 65536 or 8 + il * 16 + dl > len(blob):
        raise CorruptImage(f"rpm header claims {il} entries / {dl} data bytes in a {len(blob)} byte blob")
    data = 8 + il * 16
    out: dict = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack_from(">iIiI", blob, 8 + i * 16)
        key = TAGS.get(tag)
        if key is None or not 0 <= off < dl:
            continue
        if typ == 4 and count >= 1:  # INT32
            out[key] = struct.unpack_from(">I", blob, data + off)[0]
        elif typ in (6, 8, 9):  # STRING, STRING_ARRAY, I18NSTRING: first string
            end = blob.find(b"\0", data + off, data + dl)
            out[key] = blob[data + off : end if end >= 0 else data + dl].decode("utf-8", "replace")
    if "name" not in out:
        return None
    return {
        "name": out["name"],
        "epoch": int(out.get("epoch", 0)),
        "version": out.get("version", ""),
        "release": out.get("release", ""),
        "arch": out.get("arch", ""),
        "manager": "rpm",
    }


def from_sqlite(db: bytes, wal: bytes | None) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="fleece-rpmdb-") as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        path.write_bytes(db)
        if wal:
            (Path(tmp) / "rpmdb.sqlite-wal").write_bytes(wal)
        try:
            con = sqlite3.connect(path)
            try:
                rows = con.execute("SELECT blob FROM Packages").fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            raise CorruptImage(f"rpmdb.sqlite: {e}") from e
    return [p for (blob,) in rows if (p := parse_header(bytes(blob)))]


HASH_MAGIC = 0x061561
P_HASH_UNSORTED, P_OVERFLOW, P_HASH = 2, 7, 13
H_KEYDATA, H_OFFPAGE = 1, 3


def from_bdb(db: bytes) -> list[dict]:
    """Every data item of a BerkeleyDB hash database, parsed as an rpm header."""
    if len(db) < 512:
        raise CorruptImage("rpm Packages: too short for a BerkeleyDB file")
    for endian in ("<", ">"):
        if struct.unpack_from(endian + "I", db, 12)[0] == HASH_MAGIC:
            break
    else:
        raise CorruptImage("rpm Packages: not a BerkeleyDB hash database")
    pagesize = struct.unpack_from(endian + "I", db, 20)[0]
    if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
        raise CorruptImage(f"rpm Packages: impossible page size {pagesize}")
    npages = len(db) // pagesize

    def page(n: int) -> bytes:
        return db[n * pagesize : (n + 1) * pagesize]

    def overflow(pgno: int, total: int) -> bytes:
        out, seen = [], set()
        while pgno and len(out) <= npages:
            if pgno in seen or pgno >= npages:
                raise CorruptImage(f"rpm Packages: overflow chain broken or looping at page {pgno}")
            seen.add(pgno)
            p = page(pgno)
            if p[25] != P_OVERFLOW:
                raise CorruptImage(f"rpm Packages: page {pgno} is not an overflow page")
            nxt, used = struct.unpack_from(endian + "I", p, 16)[0], struct.unpack_from(endian + "H", p, 22)[0]
            out.append(p[26 : 26 + used])
            pgno = nxt
        blob = b"".join(out)
        return blob[:total]

    pkgs = []
    for n in range(1, npages):
        p = page(n)
        if p[25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        entries = struct.unpack_from(endian + "H", p, 20)[0]
        offs = struct.unpack_from(f"{endian}{entries}H", p, 26) if 26 + 2 * entries <= pagesize else ()
        for i in range(1, len(offs), 2):  # items alternate key, data
            off = offs[i]
            if off >= pagesize:
                continue
            if p[off] == H_OFFPAGE:
                pgno, tlen = struct.unpack_from(endian + "II", p, off + 4)
                blob = overflow(pgno, tlen)
            elif p[off] == H_KEYDATA:
                blob = p[off + 1 : offs[i - 1]]
            else:
                continue
            hdr = parse_header(blob) if len(blob) >= 16 else None
            if hdr:
                pkgs.append(hdr)
    return pkgs


def packages(root) -> list[dict] | None:
    for d in ("/var/lib/rpm", "/usr/lib/sysimage/rpm"):
        try:
            db = root.read(f"{d}/rpmdb.sqlite", limit=MAX_DB)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            db = None
        if db is not None:
            try:
                wal = root.read(f"{d}/rpmdb.sqlite-wal", limit=MAX_DB)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                wal = None
            return from_sqlite(db, wal)
        try:
            return from_bdb(root.read(f"{d}/Packages", limit=MAX_DB))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
    return None

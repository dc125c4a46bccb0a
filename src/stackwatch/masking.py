"""The one masker: credentials become `***` before any text, URL or structure is logged, printed or returned.

Every place that shows something an operator configured or a cloud sent (log formatter, `provider list`,
`db upgrade`, the catcher's start line, config errors, fleece reports, stored event payloads) goes through
this module, so a rule fixed here is fixed everywhere.

Written here rather than taken from a library, because none does exactly this (checked 2026-12):
oslo.utils' `strutils.mask_password`, the closest and from OpenStack's own world, masks `key=value`,
JSON and XML forms but not a URL's user-info (`amqp://u:pw@h/`) nor `X-Auth-Token:` header text, drops
the rest of a query string after a masked parameter (`?token=x&limit=5` -> `?token=***`), and costs
~0.1 s of import (it compiles a hundred patterns) in a CLI whose start-up budget is 0.25 s;
`mask_dict_password` leaves URLs inside values alone. The log-redaction packages on PyPI
(python-log-redactor, scrubadub, ...) look for personal data and vendor token shapes, not these.

What is masked:
- the password of a URL's user-info. The user-info ends at the URL's *last* `@`, as urllib, urllib3 and
  pika read it, so a raw `@`, `:`, `/` or `%` in a password is masked whole: `amqp://u:p@ss@h/` ->
  `amqp://u:***@h/`; an empty user keeps its place (`amqp://:***@h/`). When a URL's path or query also
  holds an `@` after a port (`http://h:80/a@b`), more than the password is hidden: over-masking is
  preferred to a leak.
- the value after a secret-named key in text: `password=`, `token=`, `secret=` (query strings with `&`,
  logfmt, environment lines), `X-Auth-Token: v`, `Authorization: Bearer v`, `"password": "v"`,
  `'password': 'v'` (a Python repr), `password: v` (YAML). Keys are matched case-insensitively.
- in mappings and sequences of any nesting (clouds.yaml `auth` blocks, log extras, settings): the value
  of every secret-named key, and every string by the text rules above.

A secret-named key contains one of `SECRET_TERMS` (`application_credential_secret`, `OS_PASSWORD`,
`X-Subject-Token`, ...) and does not end in a suffix that names a reference rather than the secret itself
(`_id`, `_name`, `_url`, `_file`, ...: `application_credential_id` stays readable).

Free text is split into URLs at whitespace and quotes, so a password holding a space or a quote is masked
only where it is a whole value (`mask_url`, a mapping value under a secret key), not inside free text.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping
from typing import Any

MASK = "***"

#: substrings of a key (lower case, `-` read as `_`) that name a secret
SECRET_TERMS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "adminpass",  # Nova's server password
    "admin_pass",
    "secret",
    "token",
    "api_key",
    "apikey",
    "auth_key",
    "private_key",
    "authorization",
    "credentials",
)
#: endings of keys that name where or which secret, not the secret (`token_url`, `application_credential_id`)
_REFERENCE_SUFFIXES: tuple[str, ...] = (
    "_id", "_ids", "_name", "_url", "_uri", "_file", "_path", "_type", "_expires_at", "_expiry", "_count",
)

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # keeps every index in place
_TERMS_FIND = re.compile("|".join(sorted({v for t in SECRET_TERMS for v in (t, t.replace("_", "-"))}, key=len)[::-1]))
_URL_END = re.compile(r"[\s\"'<>`]")  # in free text a URL ends at whitespace, a quote or an angle bracket
_AUTH_SCHEME = re.compile(r"(?:Bearer|Basic|Digest|Negotiate|Token)\s+", re.I)


@functools.cache
def _value_pattern() -> re.Pattern[str]:
    """What follows a secret-named key: `<sep><value>`. The key may be quoted (JSON, repr); `:` needs a space
    after it unless the key is quoted, so `http://token:pw@h` is left to the URL rule; a value that opens a
    structure (`"token": {"id": ...`) is left to the keys inside it. Compiled on first use: most commands
    never meet a secret-named key (start-up time)."""
    return re.compile(
        r"(?P<kq>[\"'])?"
        r"(?P<sep>\s*=\s*|(?(kq)\s*:\s*|\s*:\s+))"
        r"(?P<val>b?\"(?:[^\"\\]|\\.)*\"|b?'(?:[^'\\]|\\.)*'"
        r"|b?[\"'][^\s&<>]*"  # a quote that never closes (a cut line): up to the next space
        r"|(?:Bearer|Basic|Digest|Negotiate|Token)\s+[^\s\"'&<>]+"
        r"|(?![\[{]\s*[\"'\[{])[^\s\"'&<>]+)",
        re.I,
    )


def is_secret_key(key: object) -> bool:
    """True when a mapping key or `key=` names a secret (`password`, `X-Auth-Token`, `client_secret`, ...)."""
    name = str(key).translate(_LOWER).replace("-", "_")
    return any(term in name for term in SECRET_TERMS) and not name.endswith(_REFERENCE_SUFFIXES)


def _password_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where the password is in the URL remainder `text[start:end]` (what follows `scheme://`), if it has one."""
    at = text.rfind("@", start, end)
    if at < 0:
        return None
    colon = text.find(":", start, at)
    if colon < 0:
        return None  # `user@host`, or an `@` in the path: no password
    if any(text.find(stop, start, colon) >= 0 for stop in "/?#"):
        return None  # the `:` and `@` are in the path or query (`h/a:b@c`), not in the user-info
    return colon + 1, at


def _mask_urls(text: str, whole: bool) -> str:
    """Every `scheme://` user-info password masked. Each `://` is looked at on its own, so a URL inside
    another's query (`?next=http://u:pw@h/`) is masked too; `whole`: the text is one URL, even with spaces."""
    spans = []
    i = text.find("://")
    while i >= 0:
        end = len(text) if whole else ((m := _URL_END.search(text, i + 3)) and m.start()) or len(text)
        if span := _password_span(text, i + 3, end):
            spans.append(span)
        i = text.find("://", i + 3)
    if not spans:
        return text
    out, pos = [], 0
    for a, b in sorted(spans):
        if b <= pos:
            continue  # inside a span already masked (a `://` in a password)
        a = max(a, pos)
        out += [text[pos:a], MASK]
        pos = b
    out.append(text[pos:])
    return "".join(out)


def _pair_value(key: str, m: re.Match[str]) -> str | None:
    """`<sep><masked value>` for the secret key `key`, or None when it is not a secret or holds nothing."""
    val = m["val"]
    if not is_secret_key(key) or val in ('""', "''", 'b""', "b''"):
        return None  # an empty quoted value shows the secret is unset, as `mask` keeps ""
    prefix = val[0] if len(val) > 1 and val[0] in "bB" and val[1] in "\"'" else ""
    quote = val[len(prefix)] if val[len(prefix)] in "\"'" else ""
    head = f"{m['kq'] or ''}{m['sep']}"
    if quote:
        return f"{head}{prefix}{quote}{MASK}{quote}"
    scheme = _AUTH_SCHEME.match(val)
    if scheme is None:
        return f"{head}{MASK}"
    if "authorization" in key.lower():
        return f"{head}{scheme[0]}{MASK}"  # `Authorization: Bearer ***`
    # `password=Token next=...`: the first word was the secret; what follows is text again
    return f"{head}{MASK}{mask_text(val[len(scheme[0].rstrip()):])}"


def _is_key_char(c: str) -> bool:
    return c.isalnum() or c in "_.-"


def _mask_pairs(text: str) -> str:
    """Values after secret-named keys masked. Found from the secret terms outwards (a search for plain words in
    the lower-cased text, not a case-folding pattern tried at every position), so most text costs one scan."""
    low = text.lower()
    if len(low) != len(text):  # a few non-ASCII letters lower to two characters: keep the indexes
        low = text.translate(_LOWER)
    out, pos = [], 0
    for hit in _TERMS_FIND.finditer(low):
        i = hit.start()
        if i < pos:
            continue  # inside a key or value already masked
        ks = i
        while ks > pos and _is_key_char(text[ks - 1]):
            ks -= 1
        ke = i
        while ke < len(text) and _is_key_char(text[ke]):
            ke += 1
        m = _value_pattern().match(text, ke)
        if m is None or (rest := _pair_value(text[ks:ke], m)) is None:
            continue
        out += [text[pos:ke], rest]
        pos = m.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str) -> str:
    """Free text (a log message, an exception's text, a traceback) with every credential masked."""
    if "://" in text:
        text = _mask_urls(text, whole=False)
    return _mask_pairs(text)


def mask_url(url: str) -> str:
    """One URL (the whole string, whatever characters its password holds) with its credentials masked:
    the user-info's password and secret query parameters (`?token=...`)."""
    return _mask_pairs(_mask_urls(url, whole=True))


#: what `may_hold_secrets` looks for: the secrets OpenStack's own documents carry (`auth_token`, `X-Auth-Token`,
#: `password`, `adminPass`, `application_credential_secret`, `client_secret`); three scans, not fourteen
_PREFILTER = (b"token", b"pass", b"secret")


def may_hold_secrets(data: bytes) -> bool:
    """A cheap first look at serialised data (an event payload, on the intake's hot path): False means `mask`
    is not worth a walk, so most payloads are never walked. True when the text names a token, a password or
    a secret, or holds a URL that may have user-info (`://` and `@`). Keys that only say `credentials`,
    `api_key` or `authorization` are not looked for: OpenStack notifications carry none."""
    low = data.lower()
    return any(term in low for term in _PREFILTER) or (b"@" in data and b"://" in data)


def mask(value: Any) -> Any:
    """`value` with credentials masked at any depth: strings by `mask_text`, mapping values under secret
    keys replaced by `***` (None and "" are kept: they show a secret is unset without telling it), lists,
    tuples and sets item by item. Anything else is returned as it is (render it with `mask_text(str(x))`)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: (MASK if v not in (None, "") and is_secret_key(k) else mask(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [mask(v) for v in value]
        return items if type(value) not in (tuple, set, frozenset) else type(value)(items)
    return value

"""The one masker: credentials become `***` before any text, URL or structure is logged, printed or returned.

Every place that shows something an operator configured (log formatter, `provider list`, `db status`, the
catcher's start line, config errors, fleece reports) goes through this module, so a rule fixed here is
fixed everywhere.

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

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

#: substrings of a key (lower case, `-` read as `_`) that name a secret
SECRET_TERMS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
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

_TERMS_RE = "|".join(t.replace("_", "[_-]") for t in SECRET_TERMS)
_ANY_TERM = re.compile(_TERMS_RE, re.I)
# a URL: scheme, `://`, then everything up to whitespace, a quote or an angle bracket
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s\"'<>`]+)")
# `key<sep>value`: the key may be quoted (JSON, repr); `:` needs a space after it unless the key is quoted,
# so `http://token:pw@h` is left to the URL rule; a value that opens a structure (`"token": {"id": ...`) is
# left to the keys inside it
_PAIR = re.compile(
    r"(?<![\w.-])(?P<key>[\w.-]*?(?:" + _TERMS_RE + r")[\w.-]*)"
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
    name = str(key).lower().replace("-", "_")
    if not _ANY_TERM.search(name):
        return False
    return not name.endswith(_REFERENCE_SUFFIXES)


def _userinfo(rest: str) -> str:
    """`rest` (what follows `scheme://`) with the user-info's password masked, if it has one."""
    at = rest.rfind("@")
    if at < 0:
        return rest
    info = rest[:at]
    colon = info.find(":")
    if colon < 0:
        return rest  # `user@host`, or an `@` in the path: no password
    ends = [i for i in (info.find("/"), info.find("?"), info.find("#")) if i >= 0]
    if ends and min(ends) < colon:
        return rest  # the `:` and `@` are in the path or query (`h/a:b@c`), not in the user-info
    return f"{info[:colon]}:{MASK}{rest[at:]}"


def _mask_pair(m: re.Match[str]) -> str:
    val = m["val"]
    if not is_secret_key(m["key"]) or val in ('""', "''", 'b""', "b''"):
        return m[0]  # an empty quoted value shows the secret is unset, as `mask` keeps ""
    prefix = val[0] if len(val) > 1 and val[0] in "bB" and val[1] in "\"'" else ""
    quote = val[len(prefix)] if val[len(prefix)] in "\"'" else ""
    head = f"{m['key']}{m['kq'] or ''}{m['sep']}"
    if quote:
        return f"{head}{prefix}{quote}{MASK}{quote}"
    scheme = re.match(r"(?:Bearer|Basic|Digest|Negotiate|Token)\s+", val, re.I)
    if scheme is None:
        return f"{head}{MASK}"
    if "authorization" in m["key"].lower():
        return f"{head}{scheme[0]}{MASK}"  # `Authorization: Bearer ***`
    # `password=Token next=...`: the first word was the secret; what follows is text again
    return f"{head}{MASK}{mask_text(val[len(scheme[0].rstrip()):])}"


def mask_text(text: str) -> str:
    """Free text (a log message, an exception's text, a traceback) with every credential masked."""
    if "://" in text:
        text = _URL.sub(lambda m: m["scheme"] + _userinfo(m["rest"]), text)
    if _ANY_TERM.search(text):
        text = _PAIR.sub(_mask_pair, text)
    return text


def mask_url(url: str) -> str:
    """One URL (the whole string, whatever characters its password holds) with its credentials masked:
    the user-info's password and secret query parameters (`?token=...`)."""
    head, sep, rest = url.partition("://")
    if sep and "@" in rest:
        url = f"{head}{sep}{_userinfo(rest)}"
    if _ANY_TERM.search(url):
        url = _PAIR.sub(_mask_pair, url)
    return url


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

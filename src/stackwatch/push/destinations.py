"""Where a subscription delivers: parsing `--to`, and refusing destinations in the operator's own network.

`--to` is one of `http(s)://...` (a webhook), `zaqar:QUEUE` (a Zaqar queue of the owner project, found in
the provider's Keystone catalog) or `amqp://user:pass@host:port/vhost?exchange=X&routing_key=Y` (an exchange
of the user's broker). The sending itself is in webhook.py, amqp_destination.py and zaqar.py.

A subscription a project's user creates through the API must not make stackwatch a request-forgery proxy
into the operator's network, so loopback, private, link-local and other non-global addresses are refused
for it unless `push.allow_private_destinations` is set; admins (and the CLI, run by the operator) may use them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from stackwatch.masking import mask_url

Kind = Literal["webhook", "zaqar", "amqp"]
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class DestinationError(ValueError):
    """`--to` cannot be used; the message shows it masked."""


@dataclass(frozen=True)
class Destination:
    kind: Kind
    url: str  # the whole destination as given (credentials included: never log it, use `shown`)
    queue: str | None = None  # zaqar
    exchange: str | None = None  # amqp
    routing_key: str = ""  # amqp

    @property
    def shown(self) -> str:
        return mask_url(self.url)

    @property
    def has_credentials(self) -> bool:
        return mask_url(self.url) != self.url

    @property
    def host(self) -> str | None:
        return None if self.kind == "zaqar" else urlsplit(self.url).hostname


def parse_destination(text: str) -> Destination:
    text = text.strip()
    if text.startswith("zaqar:"):
        queue = text.removeprefix("zaqar:")
        if not _QUEUE.match(queue):
            raise DestinationError(f"zaqar queue {queue!r}: 1-64 letters, digits, '_' or '-'")
        return Destination("zaqar", text, queue=queue)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise DestinationError(f"{mask_url(text)}: {exc}") from None
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise DestinationError(f"{mask_url(text)}: a webhook URL needs a host")
        return Destination("webhook", text)
    if parts.scheme in ("amqp", "amqps"):
        query = parse_qs(parts.query)
        exchange = (query.get("exchange") or [None])[0]
        if not parts.hostname or exchange is None:
            raise DestinationError(f"{mask_url(text)}: an AMQP destination needs a host and ?exchange=NAME "
                                   "(&routing_key=KEY optional)")
        return Destination("amqp", text, exchange=exchange, routing_key=(query.get("routing_key") or [""])[0])
    raise DestinationError(f"{mask_url(text)}: use http(s)://..., zaqar:QUEUE or amqp://...?exchange=X")


def _non_global(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


def private_addresses(destination: Destination) -> list[str]:
    """The addresses of `destination`'s host that are not global (loopback, private, link-local, ...).

    A name that does not resolve counts as private: it cannot be checked, so it is refused (fail closed)."""
    host = destination.host
    if host is None:
        return []
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return [f"{host} (does not resolve)"]
    return sorted({info[4][0] for info in infos if _non_global(str(info[4][0]))})


def check_allowed(destination: Destination, *, admin: bool, allow_private: bool) -> None:
    """Raise `DestinationError` when a non-admin names a destination inside a private network."""
    if admin or allow_private:
        return
    private = private_addresses(destination)
    if private:
        raise DestinationError(f"{destination.shown}: {', '.join(private)} is not a public address; only an "
                               "admin may deliver there (or set push.allow_private_destinations: true)")

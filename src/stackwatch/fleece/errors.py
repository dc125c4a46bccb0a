"""Fleece error types: each message says what was wrong with the image and what an operator can do."""


class FleeceError(Exception):
    """Base class; the worker turns any of these into a report error instead of a crash."""


class SourceError(FleeceError):
    """The bytes could not be fetched (missing file, HTTP failure, SFTP failure)."""


class RangeNotSupported(SourceError):
    """The server cannot serve byte ranges; only a full download would work."""


class RedirectRefused(SourceError):
    """The server redirected a read to another origin (scheme, host, port): the request is not repeated
    there, because the session's credentials (a Keystone X-Auth-Token, which no HTTP client strips on a
    cross-origin redirect) would go with it."""


class BackingFileRefused(FleeceError):
    """A qcow2 header names a backing file outside the source the image came from.

    The name is the image's own text (a tenant writes it), so it is never followed off the image's origin
    (another scheme, host or port, where the session's token would go), out of the image's directory
    (`..`, an absolute path, a symlink), or onto anything but a regular file (`/dev/sda`). `image` and
    `backing` say which header named what; `rule` is the rule the name broke.
    """

    def __init__(self, image: str, backing: str, rule: str) -> None:
        super().__init__(f"{image}: backing file {backing!r} refused: {rule}")
        self.image, self.backing, self.rule = image, backing, rule


class UnsupportedFormat(FleeceError):
    """A container, partition table, volume or filesystem we do not read."""


class CorruptImage(FleeceError):
    """The image contradicts its own format (bad offsets, loops, impossible sizes)."""


class LimitExceeded(FleeceError):
    """The analysis hit a memory, time, recursion or size limit."""


class PartialResult(FleeceError):
    """A section got some of its answer before it hit a problem: keep `value`, report the message."""

    def __init__(self, value: object, message: str) -> None:
        super().__init__(message)
        self.value = value


def reraise_memory(err: BaseException) -> None:
    """libyal wraps a MemoryError raised by our file object into its own IOError text; unwrap it so the
    worker reports the memory limit instead of a misleading 'corrupt image'."""
    if "MemoryError" in str(err):
        raise MemoryError(str(err)) from err

"""Store errors an operator (or a monitor deciding whether to ack) can act on."""


class StoreError(Exception):
    """Base class of store errors."""


class StoreUnavailable(StoreError):
    """The database could not be reached or written: nothing of the batch may be acknowledged."""

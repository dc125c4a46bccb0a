"""One back-off for every retry loop: jittered exponential delays between `minimum` and `maximum` seconds.

The catcher retrying a store that is down, a handler retrying a refresh while Nova's API is away: both wait
a growing, randomised delay (so many processes restarting together do not hammer a service in step) and both
stop waiting at once when asked to stop.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    minimum: float = 0.5
    maximum: float = 15.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1 = the first): full jitter in [d/2, d]."""
        ceiling = min(self.maximum, self.minimum * 2 ** min(max(failures, 1) - 1, 30))
        return random.uniform(ceiling / 2, ceiling)

    def wait(self, failures: int, stop: threading.Event) -> bool:
        """Sleep the delay for `failures`; True when `stop` was set meanwhile (the caller should give up)."""
        return stop.wait(self.delay(failures))

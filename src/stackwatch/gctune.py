"""Garbage-collector settings for processes that take in events at a high rate.

A batch of 1,000 decoded notifications is ~100,000 container objects that live until the batch is stored, so
with CPython's default thresholds (700, 10, 10) they are traversed by young collections, promoted and then
walked again by full collections: 25-35 % of the catcher's CPU in `bench/ingest.py`. Decoded JSON holds no
reference cycles; what does (tracebacks, the drivers) is rare, so collecting less often loses nothing.

The GIL switch interval too: pika's consumer thread wakes from `select` for a few microseconds of work, but
with CPython's 5 ms interval it waits up to 5 ms for the GIL while the catcher converts a batch, so the
broker's deliveries queue up behind conversion (a convoy). At 1 ms the AMQP drain into PostgreSQL went
6.1-6.3k -> 7.1-7.2k ev/s (`bench/amqp.py --events 60000 --skip raw,latency,sqlite`, bench/RESULTS.md);
0.2 ms was slower again (5.8k): every switch costs.
"""

from __future__ import annotations

import gc
import sys

#: young generation every 50,000 allocations; full collections about 100x rarer than the default
THRESHOLDS = (50_000, 20, 100)
#: seconds a thread may hold the GIL while another waits (CPython's default: 0.005)
SWITCH_INTERVAL = 0.001


def tune_for_intake() -> None:
    """Freeze what start-up allocated (modules, config) out of every future collection; collect less often;
    hand the GIL over sooner to a waiting I/O thread.

    Call once per process, after imports and configuration, before the catchers start. Idempotent.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)

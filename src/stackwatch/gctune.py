"""Garbage-collector settings for processes that take in events at a high rate.

A batch of 1,000 decoded notifications is ~100,000 container objects that live until the batch is stored, so
with CPython's default thresholds (700, 10, 10) they are traversed by young collections, promoted and then
walked again by full collections: 25-35 % of the catcher's CPU in `bench/ingest.py`. Decoded JSON holds no
reference cycles; what does (tracebacks, the drivers) is rare, so collecting less often loses nothing.
"""

from __future__ import annotations

import gc

#: young generation every 50,000 allocations; full collections about 100x rarer than the default
THRESHOLDS = (50_000, 20, 100)


def tune_for_intake() -> None:
    """Freeze what start-up allocated (modules, config) out of every future collection; collect less often.

    Call once per process, after imports and configuration, before the catchers start. Idempotent.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)

"""A short, bounded hypothesis fuzz of the container and volume parsers (the long run: scripts/fleece/fuzz.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzzing import HEADERS, check, mutate, seeds

SEEDS: dict[str, bytes] = {}


@pytest.fixture(scope="module", autouse=True)
def _seeds(tools):
    SEEDS.update(seeds())


def _edits(header: int):
    """Mutations biased to the first `header` bytes, where the tables and pointers live."""
    return st.lists(st.tuples(st.integers(0, header - 1), st.integers(0, 255)), min_size=1, max_size=12)


@pytest.mark.parametrize("kind,header", sorted(HEADERS.items()))
def test_fuzz(kind, header):
    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(edits=_edits(header), cut=st.one_of(st.none(), st.integers(0, header)))
    def run(edits, cut):
        check(kind, mutate(SEEDS[kind], edits, cut))

    run()

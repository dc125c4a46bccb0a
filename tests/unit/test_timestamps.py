from datetime import UTC, datetime

import pytest

from stackwatch.events.timestamps import TimestampError, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22 02:02:49.708327", datetime(2026, 11, 22, 2, 2, 49, 708327, UTC)),
        ("2026-11-22 02:02:49", datetime(2026, 11, 22, 2, 2, 49, tzinfo=UTC)),
        ("2015-08-01T12:00:00", datetime(2015, 8, 1, 12, tzinfo=UTC)),
        ("2015-10-28T20:26:58.545477+0000", datetime(2015, 10, 28, 20, 26, 58, 545477, UTC)),
        ("2015-10-28T22:26:58+02:00", datetime(2015, 10, 28, 20, 26, 58, tzinfo=UTC)),
        ("2012-10-29T13:42:11Z", datetime(2012, 10, 29, 13, 42, 11, tzinfo=UTC)),
        ("2014-05-1510: 24: 56.335612", datetime(2014, 5, 15, 10, 24, 56, 335612, UTC)),
        ("2026-11-22 02:02:49.708327123", datetime(2026, 11, 22, 2, 2, 49, 708327, UTC)),
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ],
)
def test_parses(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-40 99:99:99", "", "2026-11-22", None, True, [], "x" * 10_000])
def test_refuses(text):
    with pytest.raises(TimestampError):
        parse_timestamp(text)

"""Datetimes read for JSON output: the direct text path gives what the long
way (the driver's value, the type's result processing, ``iso_utc``) gives."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from workeros.db.column_types import UTCDateTime, iso_utc


def _long_way(dialect, value):
    process = UTCDateTime()._cached_result_processor(dialect, None)
    try:
        return iso_utc(process(value))
    except (ValueError, TypeError):
        return "error"


def _direct(dialect, value):
    try:
        return UTCDateTime().json_processor(dialect)(value)
    except (ValueError, TypeError):
        return "error"


FIXED = ["2024-01-01 00:00:00", "2024-01-01 00:00:00.000000", "2024-01-01 00:00:00.123400",
         "2024-01-01T00:00:00", "2024-01-01 00:00:00.5", "2024-01-01", "2024-01-01 10:00:00+02:00",
         "2024-0a-01 00:00:00", "0000-01-01 00:00:00", "2024-13-01 00:00:00", "2023-02-29 00:00:00",
         "2024-02-29 00:00:00", "2023-04-31 00:00:00", "2024-01-01 24:00:00", "2024-01-01 23:60:00",
         "2024-01-01 23:59:60", "\u0662\u0660\u0662\u0664-01-01 00:00:00", "2024-01-01 00:00:00.1234567",
         "2024-01-01 00:00:00\n", " 2024-01-01 00:00:00"]


def test_sqlite_text_matches_the_long_way():
    rnd = random.Random(3)
    values = list(FIXED)
    for _ in range(3000):
        values.append(f"{rnd.randrange(0, 10000):04d}-{rnd.randrange(0, 14):02d}-{rnd.randrange(0, 33):02d} "
                      f"{rnd.randrange(0, 25):02d}:{rnd.randrange(0, 61):02d}:{rnd.randrange(0, 61):02d}"
                      + rnd.choice(["", ".000000", f".{rnd.randrange(10**6):06d}"]))
    dialect = sqlite.dialect()
    for value in values:
        assert _direct(dialect, value) == _long_way(dialect, value), value


@pytest.mark.parametrize("value", [dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
                                   dt.datetime(2024, 5, 6, 7, 8, 9, 120, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                                   dt.datetime(2024, 5, 6, 7, 8, 9)])
def test_postgresql_datetime_matches_the_long_way(value):
    dialect = postgresql.asyncpg.dialect()
    assert _direct(dialect, value) == _long_way(dialect, value)

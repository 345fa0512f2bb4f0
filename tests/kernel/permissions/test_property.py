"""Property: for generated rows and filters, the SQL the compiler builds and
the in-process matcher select the same rows — on SQLite and on PostgreSQL (so
the two dialects agree with each other too). Seeded and bounded for CI."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from workeros.accountability import Accountability

#: Strings that differ by case (ASCII and beyond), hold % and _, and order
#: differently by code point than by dictionary; needles that often occur in
#: them in one case or the other.
TEXT = st.one_of(st.sampled_from(["", "a", "A", "ab", "Ab", "aB", "äb", "Äb", "a%b", "_A", "ß", "b a"]),
                 st.text(alphabet=["A", "a", "b", "Ä", "ä", "ß", "%", "_", " ", "1"], max_size=4))
NEEDLE = st.sampled_from(["", "a", "A", "b", "B", "ä", "Ä", "%", "_", "ab", "Ab"])
VALUES: dict[str, Any] = {
    "name": TEXT,
    "note": TEXT,
    "owner": st.sampled_from(["u1", "u2", "x"]),
    "n": st.integers(-3, 3),
    "big": st.integers(-(2**40), 2**40),
    "x": st.sampled_from([-1.5, 0.0, 0.25, 2.0, 3.75]),
    "price": st.decimals(min_value=-20, max_value=20, places=2, allow_nan=False, allow_infinity=False),
    "ok": st.booleans(),
    "at": st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1),
                       timezones=st.just(dt.UTC)).map(lambda d: d.replace(microsecond=0)),
    "day": st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 1, 1)),
    "data": st.sampled_from([[], "", {"a": 1}, [1], 0, "x"]),
}
ORDERED = {"name", "note", "owner", "n", "big", "x", "price", "at", "day"}
TEXTUAL = {"name", "note", "owner"}


def _json_value(field: str, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.date, decimal.Decimal)):
        return str(value)
    return value


FLAG_OPS = ["_null", "_nnull", "_empty", "_nempty"]
EQUALITY_OPS = ["_eq", "_neq", "_in", "_nin"]
ORDER_OPS = ["_lt", "_lte", "_gt", "_gte", "_between", "_nbetween"]
TEXT_OPS = ["_contains", "_ncontains", "_icontains", "_starts_with", "_istarts_with", "_ends_with", "_iends_with"]


def _fields_for(op: str) -> list[str]:
    if op in TEXT_OPS:
        return sorted(TEXTUAL)
    if op in ORDER_OPS:
        return sorted(ORDERED)
    if op in EQUALITY_OPS:
        return sorted(set(VALUES) - {"data"})
    return sorted(VALUES)


@st.composite
def conditions(draw: Any) -> dict:
    """An operator first (each equally likely), then a field it applies to."""
    op = draw(st.sampled_from(FLAG_OPS + EQUALITY_OPS + ORDER_OPS + TEXT_OPS))
    field = draw(st.sampled_from(_fields_for(op)))
    if op in ("_null", "_nnull", "_empty", "_nempty"):
        value: Any = draw(st.booleans())
    elif op in ("_in", "_nin"):
        value = [_json_value(field, v) for v in draw(st.lists(VALUES[field], max_size=3))]
    elif op in ("_between", "_nbetween"):
        a, b = sorted([draw(VALUES[field]), draw(VALUES[field])])
        value = [_json_value(field, a), _json_value(field, b)]
    elif op in ("_contains", "_ncontains", "_icontains", "_starts_with", "_istarts_with", "_ends_with",
                "_iends_with"):
        value = draw(NEEDLE)
    else:
        value = _json_value(field, draw(VALUES[field]))
    return {field: {op: value}}


def filters(relational: bool) -> Any:
    def extend(inner: Any) -> Any:
        options = [
            st.builds(lambda xs: {"_and": xs}, st.lists(inner, max_size=3)),
            st.builds(lambda xs: {"_or": xs}, st.lists(inner, max_size=3)),
        ]
        if relational:
            options += [
                st.builds(lambda f: {"ref": f}, inner),
                st.builds(lambda f: {"children": {"_some": f}}, inner),
                st.builds(lambda f: {"children": {"_none": f}}, inner),
            ]
        return st.one_of(*options)

    return st.recursive(conditions(), extend, max_leaves=5)


rows_strategy = st.lists(
    st.fixed_dictionaries({k: st.one_of(st.none(), v) for k, v in VALUES.items()}), min_size=1, max_size=6)


async def _check(world: Any, rows: list[dict], refs: list[int], raw: dict) -> None:
    c = world.schema.collections["things"]
    async with world.services.db.transaction() as conn:
        await conn.execute(sa.update(c.table).values(ref=None))
        await conn.execute(sa.delete(c.table))
        for i, row in enumerate(rows, start=1):
            await conn.execute(c.table.insert().values(id=i, **row))
        for i in range(1, len(rows) + 1):
            ref = refs[i - 1]
            if 1 <= ref <= len(rows):
                await conn.execute(sa.update(c.table).where(c.table.c.id == i).values(ref=ref))
    sql, matched = await world.ids(raw, Accountability(user="u1", role="r"))
    assert sql == matched, raw


SETTINGS = dict(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
REFS = st.lists(st.integers(0, 6), min_size=6, max_size=6)


@seed(20261124)
@settings(max_examples=250, **SETTINGS)
@given(rows=rows_strategy, refs=REFS, raw=filters(relational=False))
async def test_compiler_and_matcher_agree_on_scalar_filters(world: Any, rows: list[dict], refs: list[int],
                                                            raw: dict) -> None:
    await _check(world, rows, refs, raw)


@seed(20261124)
@settings(max_examples=100, **SETTINGS)
@given(rows=rows_strategy, refs=REFS, raw=filters(relational=True))
async def test_compiler_and_matcher_agree_through_relations(world: Any, rows: list[dict], refs: list[int],
                                                           raw: dict) -> None:
    await _check(world, rows, refs, raw)

"""Every operator, logic, relations and variables: the SQL (on the test's
dialect) and the in-process matcher select exactly the expected rows."""

from __future__ import annotations

from typing import Any

import pytest

from workeros.accountability import Accountability

CASES: list[tuple[dict, list[int]]] = [
    ({"name": {"_eq": "Alpha"}}, [1]),  # case-sensitive
    ({"name": {"_neq": "Alpha"}}, [2, 3]),  # NULL never matches _neq
    ({"n": {"_lt": 2}}, [1]),
    ({"n": {"_lte": 2}}, [1, 2]),
    ({"n": {"_gt": 1}}, [2, 4]),
    ({"n": {"_gte": 10}}, [4]),
    ({"n": {"_in": [1, 10]}}, [1, 4]),
    ({"n": {"_in": []}}, []),
    ({"n": {"_nin": [1]}}, [2, 4]),  # NULL never matches _nin
    ({"n": {"_null": True}}, [3]),
    ({"n": {"_null": False}}, [1, 2, 4]),
    ({"n": {"_nnull": True}}, [1, 2, 4]),
    ({"note": {"_contains": "%"}}, [1, 4]),  # % is literal
    ({"note": {"_contains": "_"}}, [1]),  # _ is literal
    ({"note": {"_contains": "ärger"}}, []),  # case-sensitive
    ({"note": {"_icontains": "ärger"}}, [4]),  # case-insensitive beyond ASCII
    ({"note": {"_ncontains": "%"}}, [2]),  # NULL never matches _ncontains
    ({"name": {"_starts_with": "al"}}, [2]),
    ({"name": {"_istarts_with": "al"}}, [1, 2]),
    ({"name": {"_ends_with": "ha"}}, [1, 2]),
    ({"name": {"_iends_with": "GER"}}, [3]),
    ({"n": {"_between": [2, 10]}}, [2, 4]),  # both ends included
    ({"n": {"_nbetween": [2, 9]}}, [1, 4]),
    ({"note": {"_empty": True}}, [2, 3]),
    ({"note": {"_nempty": True}}, [1, 4]),
    ({"data": {"_empty": True}}, [2, 3, 4]),  # [] and "" and null
    ({"data": {"_null": True}}, [3]),
    ({"big": {"_gt": 9_000_000_000}}, [1]),
    ({"x": {"_lt": 0}}, [2]),
    ({"price": {"_gte": "3"}}, [1, 2]),
    ({"ok": {"_eq": True}}, [1, 4]),
    ({"ok": {"_neq": True}}, [2]),
    ({"at": {"_gt": "2024-03-01T00:00:00Z"}}, [2, 4]),
    ({"at": {"_lt": "$NOW"}}, [1, 2]),
    ({"at": {"_gt": "$NOW(+1 year)"}}, [4]),
    ({"at": {"_lt": "$NOW(-30 days)"}}, [1, 2]),
    ({"day": {"_between": ["2024-01-01", "2024-12-31"]}}, [1, 2]),
    ({"name": {"_lt": "alpha"}}, [1]),  # code-point order: "A" < "a" < "Ä"
    ({"name": {"_gt": "alpha"}}, [3]),
    ({"_or": [{"n": {"_eq": 1}}, {"name": {"_null": True}}]}, [1, 4]),
    ({"_and": [{"ok": {"_eq": True}}, {"n": {"_gt": 1}}]}, [4]),
    ({"_and": []}, [1, 2, 3, 4]),
    ({"_or": []}, []),
    ({"n": {"_gt": 0, "_lt": 5}}, [1, 2]),
    ({"ref": {"name": {"_eq": "Alpha"}}}, [2, 3]),  # m2o nesting
    ({"ref": {"_null": True}}, [1]),
    ({"ref": {"ref": {"name": {"_eq": "Alpha"}}}}, [4]),
    ({"children": {"_some": {"n": {"_null": True}}}}, [1]),  # o2m
    ({"children": {"_none": {"n": {"_null": True}}}}, [2, 3, 4]),
    ({"children": {"name": {"_eq": "alpha"}}}, [1]),  # plain nesting on o2m means _some
    ({"owner": {"_eq": "$CURRENT_USER"}}, [1, 4]),
    ({"owner": {"_eq": "$user.id"}}, [1, 4]),
]


@pytest.mark.parametrize("raw,expected", CASES, ids=[str(i) for i in range(len(CASES))])
async def test_operator(world: Any, raw: dict, expected: list[int]) -> None:
    acc = Accountability(user="u1", role="editor")
    sql, matched = await world.ids(raw, acc)
    assert sql == expected, ("sql", raw)
    assert matched == expected, ("matcher", raw)


async def test_variables_without_a_user_match_nothing(world: Any) -> None:
    sql, matched = await world.ids({"owner": {"_eq": "$CURRENT_USER"}}, Accountability.anonymous())
    assert sql == matched == []


async def test_user_fields_and_role(world: Any) -> None:
    acc = Accountability(user="u9", role="editor", user_fields={"first_name": "Alpha"})
    assert await world.ids({"name": {"_eq": "$user.first_name"}}, acc) == ([1], [1])
    assert await world.ids({"owner": {"_eq": "$CURRENT_ROLE"}}, acc) == ([], [])


@pytest.mark.parametrize("raw,code,needle", [
    ({"name": {"_like": "x"}}, "INVALID_QUERY", "_like"),
    ({"nope": {"_eq": 1}}, "INVALID_QUERY", "nope"),
    ({"n": {"_eq": "abc"}}, "INVALID_QUERY", "n"),
    ({"n": {"_contains": "1"}}, "INVALID_QUERY", "_contains"),
    ({"data": {"_eq": 1}}, "INVALID_QUERY", "data"),
    ({"ok": {"_lt": True}}, "INVALID_QUERY", "_lt"),
    ({"n": {"_between": [1]}}, "INVALID_QUERY", "two"),
    ({"n": {"_in": 3}}, "INVALID_QUERY", "list"),
    ({"n": {"_null": "maybe"}}, "INVALID_QUERY", "true or false"),
    ({"owner": {"_eq": "$SOMEONE"}}, "INVALID_QUERY", "$SOMEONE"),
    ({"owner": {"_eq": "$user.password_hash"}}, "INVALID_QUERY", "password_hash"),
    ({"at": {"_gt": "$NOW(-3 fortnights)"}}, "INVALID_QUERY", "fortnight"),
    ({"n": {"_some": {}}}, "INVALID_QUERY", "_some"),
    ({"_xor": []}, "INVALID_QUERY", "_xor"),
    ({"n": 3}, "INVALID_QUERY", "object"),
    ("not json", "INVALID_QUERY", "JSON"),
    ([1, 2], "INVALID_QUERY", "object"),
])
async def test_bad_filters_are_400_naming_the_problem(world: Any, raw: Any, code: str, needle: str) -> None:
    from workeros.errors import WorkerosError

    with pytest.raises(WorkerosError) as info:
        await world.ids(raw)
    body = info.value.to_error()
    assert body["extensions"]["code"] == code
    assert needle in body["message"]


async def test_limits(world: Any) -> None:
    from workeros.errors import InvalidQuery

    deep: dict = {"n": {"_eq": 1}}
    for _ in range(12):
        deep = {"_and": [deep]}
    with pytest.raises(InvalidQuery, match="deeply"):
        await world.ids(deep)
    with pytest.raises(InvalidQuery, match="too large"):
        await world.ids({"_or": [{"n": {"_eq": i}} for i in range(600)]})
    with pytest.raises(InvalidQuery, match="at most"):
        await world.ids({"n": {"_in": list(range(2000))}})


async def test_allowlists_and_related_rules(world: Any) -> None:
    """With an allowlist a field outside it is 403 whether or not it exists;
    a relation into a collection the caller cannot read is 403; the related
    collection's row filter applies inside relational predicates."""
    from workeros.errors import Forbidden
    from workeros.permissions import Rule, parse_filter

    schema = world.schema
    narrow = Rule(fields=frozenset({"id", "name", "ref"}),
                  filter=parse_filter({"ok": {"_eq": True}}, schema=schema, collection="things"))
    with pytest.raises(Forbidden):
        await world.ids({"note": {"_eq": "x"}}, access=lambda c: narrow)
    with pytest.raises(Forbidden):
        await world.ids({"nope": {"_eq": "x"}}, access=lambda c: narrow)
    # rows 2 and 3 point at row 1 (ok); row 4 points at row 2 (not ok): hidden through the guard
    assert await world.ids({"ref": {"name": {"_nnull": True}}}, access=lambda c: narrow) == ([2, 3], [2, 3])
    with pytest.raises(Forbidden):
        await world.ids({"ref": {"name": {"_eq": "x"}}}, access=lambda c: None)


#: Pairs of filters of one shape (same fields and operators, other values),
#: and what the second selects; variables resolve per caller.
TWINS: list[tuple[dict, dict, list[int]]] = [
    ({"n": {"_eq": 1}}, {"n": {"_eq": 10}}, [4]),
    ({"n": {"_in": [1, 10]}}, {"n": {"_in": [2, 1]}}, [1, 2]),
    ({"n": {"_nin": [1]}}, {"n": {"_nin": [10]}}, [1, 2]),
    ({"note": {"_icontains": "ärger"}}, {"note": {"_icontains": "SALE"}}, [1]),
    ({"name": {"_starts_with": "al"}}, {"name": {"_starts_with": "Alp"}}, [1]),
    ({"name": {"_iends_with": "GER"}}, {"name": {"_iends_with": "PHA"}}, [1, 2]),
    ({"n": {"_between": [2, 10]}}, {"n": {"_between": [1, 2]}}, [1, 2]),
    ({"at": {"_gt": "2024-03-01T00:00:00Z"}}, {"at": {"_gt": "2025-01-01T00:00:00Z"}}, [4]),
    ({"_or": [{"n": {"_eq": 1}}, {"name": {"_null": True}}]}, {"_or": [{"n": {"_eq": 2}}, {"name": {"_null": True}}]},
     [2, 4]),
    ({"owner": {"_eq": "$CURRENT_USER"}}, {"owner": {"_eq": "$CURRENT_USER"}}, [2]),  # run as u2
]


@pytest.mark.parametrize("first,second,expected", TWINS, ids=[str(i) for i in range(len(TWINS))])
async def test_statement_built_once_per_shape(world: Any, first: dict, second: dict, expected: list[int]) -> None:
    """A statement built from one filter runs another of the same shape with
    the other's values (the statement cache of plain pages relies on it)."""
    import sqlalchemy as sa

    from workeros.permissions import Variables, compile_filter_params, filter_shape, parse_filter

    schema = world.schema
    c = schema.collections["things"]
    one = parse_filter(first, schema=schema, collection="things")
    two = parse_filter(second, schema=schema, collection="things")
    v1 = Variables.for_accountability(Accountability(user="u1", role="editor"))
    v2 = Variables.for_accountability(Accountability(user="u2", role="editor"))
    shape_one, _ = filter_shape(one, variables=v1)
    shape_two, params = filter_shape(two, variables=v2)
    assert shape_one == shape_two
    stmt = sa.select(c.pk_column).where(compile_filter_params(one, schema=schema, collection="things", variables=v1))
    async with world.services.db.read() as conn:
        ids = sorted(r[0] for r in await conn.execute(stmt, params))
    assert ids == expected
    assert sorted(r[0] for r in await world.services.db.fetch(stmt, params)) == expected


async def test_shapes_differ_where_the_sql_does(world: Any) -> None:
    from workeros.permissions import Variables, filter_shape, parse_filter

    schema = world.schema
    variables = Variables.for_accountability(Accountability(user="u1", role="editor"))

    def shape(raw: dict, v: Any = variables) -> Any:
        found = filter_shape(parse_filter(raw, schema=schema, collection="things"), variables=v)
        return None if found is None else found[0]

    assert shape({"n": {"_in": [1]}}) != shape({"n": {"_in": [1, 2]}})
    assert shape({"name": {"_ends_with": ""}}) != shape({"name": {"_ends_with": "a"}})
    assert shape({"n": {"_null": True}}) != shape({"n": {"_null": False}})
    assert shape({"n": {"_eq": 1}}) != shape({"name": {"_eq": "1"}})
    # A variable that resolves to nothing compiles to FALSE: another shape.
    nobody = Variables.for_accountability(Accountability.anonymous())
    assert shape({"owner": {"_eq": "$CURRENT_USER"}}) != shape({"owner": {"_eq": "$CURRENT_USER"}}, nobody)
    assert shape({"ref": {"name": {"_eq": "Alpha"}}}) is None  # relational: built per call

"""parse_query: the REST query string as a Query (no database)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from workeros.errors import InvalidQuery
from workeros.items.query import Query, parse_query


def test_defaults() -> None:
    assert parse_query({}) == Query()


def test_scalars_and_lists() -> None:
    q = parse_query({"fields": "id, title,author.name", "sort": "-score,title", "limit": "20", "offset": "5",
                     "page": "2", "search": "x", "meta": "total_count", "groupBy": "a,b"})
    assert q.fields == ("id", "title", "author.name")
    assert q.sort == ("-score", "title")
    assert (q.limit, q.offset, q.page, q.search) == (20, 5, 2, "x")
    assert q.meta == frozenset({"total_count"})
    assert q.group_by == ("a", "b")


def test_meta_star_and_limit_minus_one() -> None:
    q = parse_query({"meta": "*", "limit": "-1"})
    assert q.meta == frozenset({"total_count", "filter_count"})
    assert q.limit == -1


def test_filter_json_form() -> None:
    q = parse_query({"filter": '{"title": {"_eq": "a"}}'})
    assert q.filter == {"title": {"_eq": "a"}}


def test_filter_deep_object_form() -> None:
    q = parse_query(MultiDict([
        ("filter[title][_eq]", "a"),
        ("filter[_or][0][score][_gt]", "3"),
        ("filter[_or][1][id][_in]", "1,2"),
        ("filter[body][_null]", "true"),
        ("filter[author][name][_eq]", "Ada"),
    ]))
    assert q.filter == {
        "title": {"_eq": "a"},
        "_or": [{"score": {"_gt": "3"}}, {"id": {"_in": ["1", "2"]}}],
        "body": {"_null": True},
        "author": {"name": {"_eq": "Ada"}},
    }


def test_aggregate_and_deep() -> None:
    q = parse_query(MultiDict([("aggregate[count]", "*"), ("aggregate[sum]", "score,rating"),
                               ("deep[posts][_limit]", "2"), ("deep[posts][_sort]", "-id"),
                               ("deep[posts][_filter][score][_gt]", "1")]))
    assert q.aggregate == {"count": ("*",), "sum": ("score", "rating")}
    assert q.deep["posts"].limit == 2
    assert q.deep["posts"].sort == ("-id",)
    assert q.deep["posts"].filter == {"score": {"_gt": "1"}}


def test_deep_json_form_nested() -> None:
    q = parse_query({"deep": '{"posts": {"_limit": 1, "tags": {"_sort": ["label"]}}}'})
    assert q.deep["posts"].limit == 1
    assert q.deep["posts"].deep["tags"].sort == ("label",)


@pytest.mark.parametrize("params, word", [
    ({"limit": "ten"}, "limit"),
    ({"limit": "-2"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"page": "0"}, "page"),
    ({"filter": "{not json"}, "filter"),
    ({"filter": "[1]"}, "filter"),
    ({"meta": "everything"}, "everything"),
    ({"aggregate[median]": "score"}, "median"),
    ({"deep": '{"posts": {"_bogus": 1}}'}, "_bogus"),
    ({"filter[a]": "1", "filter": "{}"}, "filter"),
])
def test_bad_parameters_are_400(params: dict, word: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(MultiDict(params))
    assert word in info.value.message

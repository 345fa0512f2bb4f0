"""Templates over the data chain and conditions over it: lookups only, no evaluation."""

from __future__ import annotations

import pytest
from workeros_flows.templates import lookup, render

from workeros.api import InvalidQuery, check_data_filter, match_data

CHAIN = {"$trigger": {"payload": {"title": "Hi", "total": 120, "tags": ["a", "b"], "meta": {"x": None}},
                      "keys": [7]},
         "$last": [{"id": 1}, {"id": 2}], "step_one": {"count": 3}}


def test_a_whole_string_template_yields_the_raw_value() -> None:
    assert render("{{ $trigger.payload.total }}", CHAIN) == 120
    assert render("{{$trigger.payload.tags}}", CHAIN) == ["a", "b"]
    assert render(" {{ $trigger.payload }} ", CHAIN)["title"] == "Hi"
    assert render("{{ $trigger.keys.0 }}", CHAIN) == 7
    assert render("{{ $last.1.id }}", CHAIN) == 2
    assert render("{{ $last.-1.id }}", CHAIN) == 2
    assert render("{{ step_one.count }}", CHAIN) == 3
    assert render("{{ $trigger.payload.meta.x }}", CHAIN) is None


def test_templates_inside_text_become_text() -> None:
    assert render("Total {{ $trigger.payload.total }} for {{ $trigger.payload.title }}", CHAIN) == \
        "Total 120 for Hi"
    assert render("tags={{ $trigger.payload.tags }}", CHAIN) == 'tags=["a","b"]'
    assert render("[{{ nowhere.at.all }}]", CHAIN) == "[]"
    assert render({"a": ["{{ step_one.count }}", {"b": "x{{ $trigger.keys.0 }}"}], "n": 5}, CHAIN) == \
        {"a": [3, {"b": "x7"}], "n": 5}


@pytest.mark.parametrize("template", [
    "{{ __import__('os').system('true') }}", "{{ 1 + 1 }}", "{{ $trigger.payload.title.upper() }}",
    "{{ $trigger.__class__ }}", "{{ $trigger['payload'] }}",
])
def test_nothing_is_evaluated(template: str) -> None:
    assert render(template, CHAIN) in (None, template)  # a failed lookup, or the text left alone
    assert lookup(CHAIN, "$trigger.__class__") is None


def test_conditions_use_the_filter_language_over_the_chain() -> None:
    assert match_data({"$trigger": {"payload": {"total": {"_gt": 100}}}}, CHAIN)
    assert not match_data({"$trigger": {"payload": {"total": {"_gt": 200}}}}, CHAIN)
    assert match_data({"$trigger": {"payload": {"title": {"_icontains": "HI"}}}}, CHAIN)
    assert not match_data({"$trigger": {"payload": {"title": {"_contains": "HI"}}}}, CHAIN)
    assert match_data({"_or": [{"step_one": {"count": {"_eq": 4}}}, {"step_one": {"count": {"_in": [3]}}}]}, CHAIN)
    assert match_data({"$trigger": {"payload": {"meta": {"x": {"_null": True}}}}}, CHAIN)
    assert not match_data({"$trigger": {"payload": {"meta": {"x": {"_neq": 1}}}}}, CHAIN)  # NULL matches nothing
    assert match_data({"$trigger": {"payload": {"missing": {"_empty": True}}}}, CHAIN)
    assert match_data({"$last": {"_some": {"id": {"_eq": 2}}}}, CHAIN)
    assert match_data({"$last": {"_none": {"id": {"_eq": 3}}}}, CHAIN)
    assert match_data({"$trigger": {"payload": {"total": {"_between": [120, 130]}}}}, CHAIN)
    assert match_data({"$trigger": {"payload": {"total": {"_gte": "100"}}}}, CHAIN)  # a number and a numeric string
    assert not match_data({"$trigger": {"payload": {"total": {"_in": []}}}}, CHAIN)
    assert not match_data({"$trigger": {"payload": {"title": {"_gt": 3}}}}, CHAIN)  # kinds never compare
    with pytest.raises(InvalidQuery, match="_explode"):
        check_data_filter({"a": {"_explode": 1}})
    with pytest.raises(InvalidQuery):
        check_data_filter({"_and": {"a": 1}})

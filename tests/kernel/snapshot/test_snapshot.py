"""Schema snapshots: take one (``GET /api/schema/snapshot``), plan the change
(``POST /api/schema/diff``) and run it (``POST /api/schema/apply``) — across
dialects, all or nothing, admin only; and the ``workeros schema`` commands."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIRST_PARTY
from tests.kernel.snapshot.conftest import DIALECT_PAIRS, running
from tests.kernel.snapshot.schema_setup import all_rows, create_schema, expect, fill


async def snapshot_of(admin: Any) -> dict[str, Any]:
    return (await expect(await admin.get("/api/schema/snapshot"), 200)).data


def ops_of(plan: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(op["op"], op["collection"], op.get("field")) for op in plan]


def collection(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["collections"] if c["collection"] == name)


def field(doc: dict[str, Any], name: str, field_name: str) -> dict[str, Any]:
    return next(f for f in collection(doc, name)["fields"] if f["field"] == field_name)


@pytest.mark.parametrize("dialects", DIALECT_PAIRS)
async def test_snapshot_applied_to_an_empty_instance_yields_the_same_snapshot(dialects, make_url, tmp_path) -> None:
    source_dialect, target_dialect = dialects
    source_url, target_url = await make_url(source_dialect, "a"), await make_url(target_dialect, "b")
    async with running(source_url, tmp_path / "a") as a:
        await create_schema(a.as_admin())
        doc = await snapshot_of(a.as_admin())
    assert doc["format"] == "workeros-schema" and doc["version"] == 1
    assert [c["collection"] for c in doc["collections"]] == ["notes", "people", "people_tags", "tags", "teams"]
    assert field(doc, "people", "id")["type"] == "uuid"
    assert field(doc, "people", "price")["options"] == {"precision": 12, "scale": 3}
    assert field(doc, "teams", "members")["type"] == "alias"
    assert {(r["collection"], r["field"], r["related_collection"]) for r in doc["relations"]} == {
        ("people", "team", "teams"), ("notes", "team_id", "teams"),
        ("people_tags", "people_id", "people"), ("people_tags", "tags_id", "tags")}

    async with running(target_url, tmp_path / "b") as b:
        admin = b.as_admin()
        planned = (await expect(await admin.post("/api/schema/diff", json=doc), 200)).data
        kinds = [op["op"] for op in planned]
        assert kinds.count("create_collection") == 5 and kinds.count("create_relation") == 4
        assert set(kinds) <= {"create_collection", "create_relation", "order_fields"}
        assert (await snapshot_of(admin))["collections"] == [], "diff changes nothing"

        ran = (await expect(await admin.post("/api/schema/apply", json={"data": doc}), 200)).data
        assert ran == planned
        assert await snapshot_of(admin) == doc
        assert (await expect(await admin.post("/api/schema/diff", json=doc), 200)).data == []
        assert (await expect(await admin.post("/api/schema/apply", json=doc), 200)).data == []

        # The applied schema works: relations, defaults and constraints are real.
        ids = (await fill(admin, 3))["people"]
        person = (await expect(await admin.get(f"/api/items/people/{ids[1]}",
                                               params={"fields": "*,team.title,tags.label"}), 200)).data
        assert person["team"] == {"title": "Blue"} and person["tags"] == [{"label": "beta"}]
        r = await admin.post("/api/items/people", json={"name": "x", "token": "00000000-0000-4000-8000-000000000000"})
        assert r.status == 409, "the unique constraint came across"
        created = (await expect(await admin.post("/api/items/people", json={"name": "defaults"}), 200)).data
        assert (created["age"], created["active"]) == (18, True)
        await expect(await admin.delete("/api/items/teams/1"), 204)
        assert await all_rows(admin, "notes") == [{"id": 3, "body": "none", "team_id": None}], "cascade came across"

        # ... and back again: the target's snapshot, applied to the source dialect, is the same.
        back = await snapshot_of(admin)
    async with running(await make_url(source_dialect, "c"), tmp_path / "c") as c:
        await expect(await c.as_admin().post("/api/schema/apply", json=back), 200)
        assert await snapshot_of(c.as_admin()) == doc


async def test_diff_lists_the_planned_operations_and_apply_runs_them(api) -> None:
    admin = api.as_admin()
    await create_schema(admin)
    await fill(admin)
    before = await snapshot_of(admin)
    wanted = copy.deepcopy(before)
    people = collection(wanted, "people")
    people["fields"] = [f for f in people["fields"] if f["field"] != "bio"]
    people["fields"].append({"field": "nickname", "type": "string", "options": {"length": 40}, "nullable": True,
                             "default": "anon", "unique": False, "indexed": False, "note": None, "meta": None})
    field(wanted, "people", "age").update(indexed=False, note="years")
    field(wanted, "people", "name")["type"] = "text"
    field(wanted, "people", "name")["options"] = {}
    collection(wanted, "teams")["note"] = "renamed note"
    next(r for r in wanted["relations"] if r["field"] == "team")["on_delete"] = "cascade"
    wanted["collections"] = [c for c in wanted["collections"] if c["collection"] != "tags"
                             and c["collection"] != "people_tags"]
    wanted["relations"] = [r for r in wanted["relations"] if r["collection"] != "people_tags"]
    people["fields"] = [f for f in people["fields"] if f["field"] != "tags"]

    planned = (await expect(await admin.post("/api/schema/diff", json=wanted), 200)).data
    assert ops_of(planned) == [
        # the junction's relations go with their collection
        ("delete_field", "people", "bio"),
        ("delete_collection", "people_tags", None),
        ("delete_collection", "tags", None),
        ("update_field", "people", "name"),
        ("update_field", "people", "age"),
        ("create_field", "people", "nickname"),
        ("update_collection", "teams", None),
        ("update_relation", "people", "team"),
    ]
    by_key = {(op["op"], op["collection"], op.get("field")): op for op in planned}
    assert by_key[("update_field", "people", "age")]["data"] == {"indexed": False, "note": "years"}
    assert by_key[("update_field", "people", "name")]["data"] == {"type": "text", "options": {}}
    assert by_key[("update_relation", "people", "team")]["data"] == {"on_delete": "cascade"}
    assert await snapshot_of(admin) == before, "diff is read-only"

    ran = (await expect(await admin.post("/api/schema/apply", json=wanted), 200)).data
    assert ran == planned
    assert await snapshot_of(admin) == wanted
    rows = await all_rows(admin, "people")
    assert len(rows) == 6 and all(row["nickname"] == "anon" for row in rows) and "bio" not in rows[0]
    assert (await admin.get("/api/items/tags")).status in (403, 404)
    await expect(await admin.delete("/api/items/teams/2"), 204)
    assert not [row for row in await all_rows(admin, "people") if row["team"] == 2], "on_delete is now cascade"


async def test_yaml_snapshot_round_trips_through_diff_and_apply(api) -> None:
    admin = api.as_admin()
    await create_schema(admin)
    r = await expect(await admin.get("/api/schema/snapshot", params={"format": "yaml"}), 200)
    assert r.headers["Content-Type"].startswith("application/yaml")
    text = r.raw.decode()
    assert text.startswith("format: workeros-schema\n")
    r = await expect(await admin.get("/api/schema/snapshot", headers={"Accept": "application/yaml"}), 200)
    assert r.raw.decode() == text
    assert yaml.safe_load(text) == await snapshot_of(admin)
    yaml_headers = {"Content-Type": "application/yaml"}
    assert (await expect(await admin.post("/api/schema/diff", data=text, headers=yaml_headers), 200)).data == []
    edited = text.replace("note: squads", "note: teams of people")
    assert edited != text
    planned = (await expect(await admin.post("/api/schema/apply", data=edited, headers=yaml_headers), 200)).data
    assert ops_of(planned) == [("update_collection", "teams", None)]
    assert collection(await snapshot_of(admin), "teams")["note"] == "teams of people"
    r = await admin.post("/api/schema/diff", data="collections: [unclosed", headers=yaml_headers)
    assert r.status == 400 and r.code == "INVALID_PAYLOAD"
    r = await admin.get("/api/schema/snapshot", params={"format": "xml"})
    assert r.status == 400 and r.code == "INVALID_QUERY"


def _broken_documents(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Documents that change several things, one of them impossible."""
    out = {}
    # Refused while parsing: an unknown field type late in the document.
    bad = copy.deepcopy(doc)
    bad["collections"].append({"collection": "zzz", "fields": [{"field": "x", "type": "nonsense"}]})
    out["invalid type"] = bad
    # Refused while planning: a primary key type cannot change in place.
    bad = copy.deepcopy(doc)
    bad["collections"].append({"collection": "aaa", "fields": [{"field": "t", "type": "string"}]})
    collection(bad, "teams")["pk_type"] = "uuid"
    field(bad, "teams", "id")["type"] = "uuid"
    out["pk change"] = bad
    return out


def _failing_documents(doc: dict[str, Any]) -> dict[str, tuple[dict[str, Any], int]]:
    """Valid documents whose last operations fail against the data, after earlier
    ones (drops, new collections, DDL) have already run."""
    out = {}
    bad = copy.deepcopy(doc)
    collection(bad, "people")["fields"] = [f for f in collection(bad, "people")["fields"] if f["field"] != "bio"]
    bad["collections"].append({"collection": "aaa", "fields": [{"field": "t", "type": "string"}]})
    collection(bad, "teams")["fields"].append({"field": "code", "type": "string", "nullable": False})
    out["required field on rows"] = (bad, 409)
    bad = copy.deepcopy(doc)
    bad["collections"] = [c for c in bad["collections"] if c["collection"] != "notes"]
    bad["relations"] = [r for r in bad["relations"] if r["collection"] != "notes"]
    collection(bad, "teams")["fields"] = [f for f in collection(bad, "teams")["fields"] if f["field"] != "notes"]
    field(bad, "people", "active")["unique"] = True  # three rows share a value
    out["unique over duplicates"] = (bad, 409)
    return out


async def test_apply_is_all_or_nothing(api) -> None:
    admin = api.as_admin()
    await create_schema(admin)
    await fill(admin)
    before = await snapshot_of(admin)
    rows_before = {c: await all_rows(admin, c) for c in ("people", "teams", "notes", "people_tags")}
    activity_before = (await expect(await admin.get("/api/activity", params={"limit": "-1"}), 200)).data

    cases = [(name, bad, 400) for name, bad in _broken_documents(before).items()]
    cases += [(name, bad, status) for name, (bad, status) in _failing_documents(before).items()]
    for name, bad, status in cases:
        r = await admin.post("/api/schema/apply", json=bad)
        assert r.status == status, (name, r)
        assert "SELECT" not in r.raw.decode().upper() and "Traceback" not in r.raw.decode(), name
        assert await snapshot_of(admin) == before, name
        for c, rows in rows_before.items():
            assert await all_rows(admin, c) == rows, (name, c)
        assert (await admin.get("/api/items/aaa")).status in (403, 404), name

    # Nothing half-done is left in the database either: the same documents,
    # made valid, apply cleanly (a leftover c_aaa table would make this fail).
    fixed, _ = _failing_documents(before)["required field on rows"]
    field(fixed, "teams", "code")["default"] = "T"
    await expect(await admin.post("/api/schema/apply", json=fixed), 200)
    assert {row["code"] for row in await all_rows(admin, "teams")} == {"T"}
    activity_after = (await expect(await admin.get("/api/activity", params={"limit": "-1"}), 200)).data
    assert len(activity_after) == len(activity_before) + 1, "failed applies leave no activity"


async def test_unknown_sections_and_versions_are_refused(api) -> None:
    admin = api.as_admin()
    await create_schema(admin)
    doc = await snapshot_of(admin)
    for bad, words in [({**doc, "version": 99}, "version"), ({**doc, "widgets": []}, "widgets"),
                       ({**doc, "format": "other"}, "format"), ([1, 2], "object")]:
        r = await admin.post("/api/schema/diff", json=bad)
        assert r.status == 400 and r.code == "INVALID_PAYLOAD" and words in r.json["errors"][0]["message"], r
        r = await admin.post("/api/schema/apply", json=bad)
        assert r.status == 400, r
    assert await snapshot_of(admin) == doc


async def test_only_admins_use_the_schema_endpoints(api) -> None:
    admin = api.as_admin()
    await create_schema(admin)
    doc = await snapshot_of(admin)
    empty = {**doc, "collections": [], "relations": []}
    await expect(await admin.post("/api/roles", json={"name": "editor"}), 201)
    for caller in (api.anonymous(), api.as_role("editor", user="u1"), api.with_token("not-a-token")):
        expected = 401 if caller.token else 403
        r = await caller.get("/api/schema/snapshot")
        assert r.status == expected, r
        if expected == 403:
            assert r.code == "FORBIDDEN" and "people" not in r.raw.decode()
        r = await caller.get("/api/schema/snapshot", params={"format": "yaml"})
        assert r.status == expected, r
        for path in ("/api/schema/diff", "/api/schema/apply"):
            r = await caller.post(path, json=empty)
            assert r.status == expected, r
            r = await caller.post(path, data="not: [valid", headers={"Content-Type": "application/yaml"})
            assert r.status == expected, "the caller is checked before the document"
    assert await snapshot_of(admin) == doc


# -- the command line --------------------------------------------------------------------------

def _cli(data_dir: Path, url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY), "WORKEROS_LOG_LEVEL": "warning", "PATH": ""}
    return subprocess.run([sys.executable, "-m", "workeros", "--data-dir", str(data_dir), *args,
                           "--database-url", url], capture_output=True, text=True, env=env, input=stdin,
                          timeout=120)


@pytest.mark.slow
async def test_cli_schema_snapshot_diff_apply(wos_database_url, make_url, tmp_path) -> None:
    async with running(wos_database_url, tmp_path / "a") as a:
        await create_schema(a.as_admin())
        doc = await snapshot_of(a.as_admin())

    out = _cli(tmp_path / "a", wos_database_url, "schema", "snapshot")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("format: workeros-schema") and yaml.safe_load(out.stdout) == doc
    out = _cli(tmp_path / "a", wos_database_url, "schema", "snapshot", "--json")
    assert json.loads(out.stdout) == doc
    path = tmp_path / "schema.yaml"
    out = _cli(tmp_path / "a", wos_database_url, "schema", "snapshot", "--output", str(path))
    assert out.returncode == 0 and yaml.safe_load(path.read_text()) == doc

    target = await make_url("sqlite", "cli-target")
    out = _cli(tmp_path / "b", target, "schema", "diff", str(path))
    assert out.returncode == 0, out.stderr
    assert "create_collection people" in out.stdout and "create_relation people.team" in out.stdout
    out = _cli(tmp_path / "b", target, "schema", "diff", str(path), "--json")
    planned = json.loads(out.stdout)
    assert [op["op"] for op in planned].count("create_collection") == 5

    edited = yaml.safe_dump({**doc, "collections": [*doc["collections"], {
        "collection": "zzz", "fields": [{"field": "x", "type": "nonsense"}]}]})
    out = _cli(tmp_path / "b", target, "schema", "apply", "-", stdin=edited)
    assert out.returncode == 1 and "nonsense" in out.stderr and "Traceback" not in out.stderr
    out = _cli(tmp_path / "b", target, "schema", "diff", str(path), "--json")
    assert json.loads(out.stdout) == planned, "the failed apply changed nothing"

    out = _cli(tmp_path / "b", target, "schema", "apply", str(path))
    assert out.returncode == 0, out.stderr
    assert f"{len(planned)} operations" in out.stdout
    out = _cli(tmp_path / "b", target, "schema", "diff", str(path))
    assert out.returncode == 0 and "no changes" in out.stdout
    async with running(target, tmp_path / "b") as b:
        assert await snapshot_of(b.as_admin()) == doc

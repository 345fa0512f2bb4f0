"""Database dialects.

A dialect is chosen by the scheme of the ``database.url`` setting (``sqlite://``,
``postgresql://``). Its factory builds a :class:`workeros.db.database.Database`, the kernel's
handle on an async SQLAlchemy engine plus the dialect's transaction discipline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from . import hookspec
from ._entries import Backend


@dataclass(frozen=True)
class Dialect(Backend):
    """A database dialect.

    ``schemes``
        URL schemes this dialect serves (``("sqlite", "sqlite+aiosqlite")``).
    ``factory(url: str, settings: Settings) -> Database``
        Builds the database handle; may return an awaitable. The engine is disposed
        by the kernel on shutdown (``Database.close``).
    """

    schemes: Sequence[str] = field(default_factory=tuple)


@hookspec
def workeros_register_db_dialects() -> Sequence[Dialect]:
    """Register database dialects.

    Called once per boot. The dialect whose ``schemes`` contains the scheme of
    ``database.url`` is used; two dialects claiming one name, or one scheme, is a
    startup error naming both distributions. A dialect whose ``check`` reports it
    unavailable (its driver is not installed) gives a startup error with that reason
    when it is the one configured.

    :return: dialect entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_db_dialects():
            return [Dialect(name="sqlite", schemes=("sqlite",), factory=SqliteDatabase.create)]
    """

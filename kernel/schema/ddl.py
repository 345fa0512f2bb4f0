"""DDL on the live database, the same operations on SQLite and PostgreSQL.

Every function takes a *sync* SQLAlchemy connection (call it through
``AsyncConnection.run_sync``) that is inside the caller's schema transaction, so
a failure anywhere rolls back the DDL and the catalog together. Statements are
built by Alembic's operations and SQLAlchemy's DDL constructs: identifiers are
quoted by them, never formatted into SQL text.

SQLite cannot ALTER most things; Alembic's batch mode rebuilds the table (create
a copy, copy the rows, drop, rename) inside the same transaction. The schema
transaction turns SQLite's foreign-key enforcement off while it runs (dropping a
parent table would otherwise fire ``ON DELETE`` actions on its children) and
runs ``PRAGMA foreign_key_check`` before committing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from workeros.schema.catalog import column_type, pk_column
from workeros.schema.field_types import INT32, INT64
from workeros.schema.identifiers import MAX_IDENTIFIER
from workeros.schema.model import Field

if TYPE_CHECKING:
    from alembic.operations import Operations

IndexKind = Literal["index", "unique"] | None


def operations(conn: sa.Connection) -> Operations:
    # Alembic (with Mako) loads at the first DDL, not when the kernel is imported.
    from workeros.db.migrate import load_alembic

    load_alembic()
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    return Operations(MigrationContext.configure(conn))


def constraint_name(prefix: str, table: str, column: str) -> str:
    """A deterministic name within PostgreSQL's 63-byte limit."""
    name = f"{prefix}_{table}_{column}"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(f"{table}.{column}".encode()).hexdigest()[:20]
    return f"{prefix}_{table[:MAX_IDENTIFIER - len(prefix) - 23]}_{digest}"


def _batch(conn: sa.Connection, table: str, **kw: Any) -> Any:
    """Batch ALTER: native statements on PostgreSQL, a table rebuild on SQLite
    where ALTER cannot do it. The rebuild keeps ``AUTOINCREMENT``."""
    table_kwargs = {}
    if conn.dialect.name == "sqlite" and _sqlite_autoincrement(conn, table):
        table_kwargs["sqlite_autoincrement"] = True
    return operations(conn).batch_alter_table(table, recreate=kw.pop("recreate", "auto"),
                                              table_kwargs=table_kwargs, **kw)


def _sqlite_autoincrement(conn: sa.Connection, table: str) -> bool:
    master = sa.table("sqlite_master", sa.column("type"), sa.column("name"), sa.column("sql"))
    sql = conn.execute(sa.select(master.c.sql).where(master.c.type == "table", master.c.name == table)).scalar()
    return bool(sql) and "AUTOINCREMENT" in sql.upper()


# -- tables ----------------------------------------------------------------------------

def has_table(conn: sa.Connection, name: str) -> bool:
    return sa.inspect(conn).has_table(name)


def table_names(conn: sa.Connection) -> list[str]:
    return sa.inspect(conn).get_table_names()


def data_column(field: Field) -> sa.Column:
    return sa.Column(field.name, column_type(field), nullable=field.nullable)


def create_table(conn: sa.Connection, name: str, pk: Field, fields: Sequence[Field]) -> None:
    """Create a managed collection's table with its primary key, columns and
    indexes (no foreign keys: relations add those)."""
    autoincrement = pk.type in ("integer", "bigint")
    table = sa.Table(
        name, sa.MetaData(), pk_column(pk, autoincrement=autoincrement),
        *(data_column(f) for f in fields if not f.alias),
        sqlite_autoincrement=autoincrement,
    )
    table.create(conn)
    for field in fields:
        if not field.alias:
            set_index(conn, name, field.name, index_kind(field))


def drop_table(conn: sa.Connection, name: str) -> None:
    sa.Table(name, sa.MetaData()).drop(conn)


def rename_table(conn: sa.Connection, old: str, new: str) -> None:
    operations(conn).rename_table(old, new)


def has_rows(conn: sa.Connection, table: str, where_null: str | None = None) -> bool:
    """Whether ``table`` has any row (with ``where_null`` IS NULL, if given)."""
    t = sa.table(table, *([sa.column(where_null)] if where_null else []))
    query = sa.select(sa.literal(1)).select_from(t)
    if where_null:
        query = query.where(t.c[where_null].is_(None))
    return conn.execute(query.limit(1)).first() is not None


def has_duplicates(conn: sa.Connection, table: str, column: str) -> bool:
    t = sa.table(table, sa.column(column))
    query = (sa.select(t.c[column]).where(t.c[column].is_not(None)).group_by(t.c[column])
             .having(sa.func.count() > 1).limit(1))
    return conn.execute(query).first() is not None


def values_fit(conn: sa.Connection, table: str, before: Field, after: Field) -> bool:
    """Whether every value of ``before``'s column converts to ``after``'s type
    without loss: no string longer than the new length, no number outside the
    new range or with more decimals than the new scale. Checked before a type
    change because SQLite does not enforce lengths or ranges and PostgreSQL's
    casts round numbers instead of refusing them."""
    t = sa.table(table, sa.column(before.name, column_type(before)))
    col = t.c[before.name]

    def any_row(condition: Any) -> bool:
        return conn.execute(sa.select(sa.literal(1)).select_from(t).where(col.is_not(None), condition)
                            .limit(1)).first() is not None

    if after.type == "string":
        return not any_row(sa.func.length(col) > int(after.options.get("length") or 255))
    if after.type not in ("integer", "bigint", "decimal") or before.type not in ("integer", "bigint", "float",
                                                                                "decimal"):
        return True
    numeric = sa.cast(col, sa.Numeric())
    if after.type in ("integer", "bigint"):
        if (before.type, after.type) in (("integer", "bigint"), ("integer", "integer"), ("bigint", "bigint")):
            return True
        low, high = (sa.literal(v, sa.Numeric()) for v in (INT32 if after.type == "integer" else INT64))
        if any_row(sa.or_(numeric < low, numeric > high)):
            return False
        return before.type in ("integer", "bigint") or not any_row(numeric != sa.func.round(numeric))
    precision, scale = int(after.options.get("precision", 10)), int(after.options.get("scale", 5))
    bound = sa.literal(10 ** (precision - scale), sa.Numeric())
    if any_row(sa.or_(numeric >= bound, numeric <= -bound)):
        return False
    return before.type in ("integer", "bigint") or not any_row(numeric != sa.func.round(numeric, scale))


# -- columns ---------------------------------------------------------------------------

def add_column(conn: sa.Connection, table: str, field: Field, *, fill: Any = None) -> None:
    """Add ``field``'s column. Existing rows get ``fill`` (already coerced to the
    field's type); a NOT NULL column is added nullable, filled, then tightened,
    which works on both dialects whether or not the table has rows."""
    loose = Field(name=field.name, type=field.type, nullable=True, options=field.options)
    operations(conn).add_column(table, data_column(loose))
    if fill is not None:
        t = sa.table(table, sa.column(field.name, column_type(field)))
        conn.execute(t.update().values({field.name: fill}))
    if not field.nullable:
        with _batch(conn, table) as batch:
            batch.alter_column(field.name, existing_type=column_type(field), nullable=False)
    set_index(conn, table, field.name, index_kind(field))


def drop_column(conn: sa.Connection, table: str, column: str) -> None:
    """Drop a column with its indexes and foreign keys."""
    for index in _indexes_on(conn, table, column):
        _drop_index(conn, table, index)
    if conn.dialect.name == "sqlite":
        _sqlite_rebuild_without(conn, table, column, drop_column=True)
        return
    operations(conn).drop_column(table, column)


def rename_column(conn: sa.Connection, table: str, old: str, new: str, field: Field) -> None:
    """Native ``RENAME COLUMN`` on both dialects (SQLite >= 3.25 rewrites its
    indexes and foreign keys); indexes are then renamed to match."""
    operations(conn).alter_column(table, old, new_column_name=new, existing_type=column_type(field))
    renamed = Field(name=new, type=field.type, unique=field.unique, indexed=field.indexed)
    set_index(conn, table, new, index_kind(renamed), force=True)


def alter_column(conn: sa.Connection, table: str, before: Field, after: Field) -> None:
    """Change a column's type and/or nullability (values are cast on the copy)."""
    kwargs: dict[str, Any] = {"existing_type": column_type(before), "existing_nullable": before.nullable}
    if column_type(before).compile(dialect=conn.dialect) != column_type(after).compile(dialect=conn.dialect):
        kwargs["type_"] = column_type(after)
    if before.nullable != after.nullable:
        kwargs["nullable"] = after.nullable
    if "type_" not in kwargs and "nullable" not in kwargs:
        return
    with _batch(conn, table) as batch:
        batch.alter_column(before.name, **kwargs)


# -- indexes ---------------------------------------------------------------------------

def index_kind(field: Field) -> IndexKind:
    if field.primary_key or field.alias:
        return None
    if field.unique:
        return "unique"
    return "index" if field.indexed else None


def _indexes_on(conn: sa.Connection, table: str, column: str) -> list[dict[str, Any]]:
    """Single-column indexes and unique constraints on ``column`` (not the
    primary key), each as ``{"name", "unique", "constraint"}``."""
    inspector = sa.inspect(conn)
    found = [
        {"name": ix["name"], "unique": bool(ix["unique"]), "constraint": False, "column": column}
        for ix in inspector.get_indexes(table)
        if ix["column_names"] == [column] and ix.get("name")
    ]
    names = {f["name"] for f in found}
    for uq in inspector.get_unique_constraints(table):
        if uq["column_names"] == [column] and uq.get("name") not in names:
            found.append({"name": uq.get("name"), "unique": True, "constraint": True, "column": column})
    return found


def _drop_index(conn: sa.Connection, table: str, index: dict[str, Any]) -> None:
    if not index["constraint"]:
        operations(conn).drop_index(index["name"], table_name=table)
    elif conn.dialect.name == "sqlite":
        _sqlite_rebuild_without(conn, table, index["column"], unique=True)
    else:
        operations(conn).drop_constraint(index["name"], table, type_="unique")


def set_index(conn: sa.Connection, table: str, column: str, kind: IndexKind, *, force: bool = False) -> None:
    """Make ``column`` carry exactly one index of ``kind`` (or none). Uniqueness
    is a unique index on both dialects, named deterministically; ``force``
    recreates it under the current name (after a rename)."""
    existing = _indexes_on(conn, table, column)
    wanted = None if kind is None else constraint_name("uq" if kind == "unique" else "ix", table, column)
    keep = [ix for ix in existing if not force and ix["name"] == wanted and ix["unique"] == (kind == "unique")]
    for index in existing:
        if index not in keep:
            _drop_index(conn, table, index)
    if wanted is not None and not keep:
        operations(conn).create_index(wanted, table, [column], unique=kind == "unique")


# -- foreign keys ----------------------------------------------------------------------

def add_foreign_key(conn: sa.Connection, table: str, column: str, ref_table: str, ref_column: str,
                    on_delete: str) -> None:
    with _batch(conn, table) as batch:
        batch.create_foreign_key(constraint_name("fk", table, column), ref_table, [column], [ref_column],
                                 ondelete=on_delete.upper())


def drop_foreign_key(conn: sa.Connection, table: str, column: str) -> None:
    if conn.dialect.name == "sqlite":
        _sqlite_rebuild_without(conn, table, column, foreign_keys=True)
        return
    for fk in sa.inspect(conn).get_foreign_keys(table):
        if fk["constrained_columns"] == [column] and fk.get("name"):
            operations(conn).drop_constraint(fk["name"], table, type_="foreignkey")


def foreign_key_violations(conn: sa.Connection) -> list[Any]:
    """SQLite: rows that break a foreign key (checked before a schema change
    commits, since enforcement is off while it runs). PostgreSQL enforces
    foreign keys on every statement, so there is nothing to find."""
    if conn.dialect.name != "sqlite":
        return []
    return list(conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall())


def _sqlite_rebuild_without(conn: sa.Connection, table: str, column: str, *, foreign_keys: bool = False,
                            unique: bool = False, drop_column: bool = False) -> None:
    """Rebuild a SQLite table from its reflection minus, for ``column``, its
    foreign keys, its single-column unique constraints, or the column itself.
    Works for unnamed constraints too, which batch mode cannot drop by name."""
    reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
    for constraint in list(reflected.constraints):
        columns = [c.name for c in constraint.columns] if hasattr(constraint, "columns") else []
        if isinstance(constraint, sa.ForeignKeyConstraint) and (foreign_keys or drop_column) and column in columns:
            reflected.constraints.discard(constraint)
        elif isinstance(constraint, sa.UniqueConstraint) and (unique or drop_column) and column in columns:
            reflected.constraints.discard(constraint)
    if foreign_keys or drop_column:
        reflected.c[column].foreign_keys.clear()
    with _batch(conn, table, copy_from=reflected, recreate="always") as batch:
        if drop_column:
            batch.drop_column(column)


# -- adoption --------------------------------------------------------------------------

def describe_table(conn: sa.Connection, name: str) -> dict[str, Any]:
    """Columns, primary key, single-column unique/indexed columns and foreign
    keys of an existing table, for adoption."""
    inspector = sa.inspect(conn)
    indexes = inspector.get_indexes(name)
    unique = {ix["column_names"][0] for ix in indexes if ix["unique"] and len(ix["column_names"]) == 1}
    unique |= {uq["column_names"][0] for uq in inspector.get_unique_constraints(name) if len(uq["column_names"]) == 1}
    indexed = {ix["column_names"][0] for ix in indexes if not ix["unique"] and len(ix["column_names"]) == 1}
    return {
        "columns": inspector.get_columns(name),
        "primary_key": inspector.get_pk_constraint(name).get("constrained_columns") or [],
        "unique": unique,
        "indexed": indexed,
        "foreign_keys": inspector.get_foreign_keys(name),
        "autoincrement": conn.dialect.name == "sqlite" and _sqlite_autoincrement(conn, name),
    }

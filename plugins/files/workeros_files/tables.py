"""The plugin's tables (created by its own migrations, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime, UUIDString

metadata = sa.MetaData()

folders = sa.Table(
    "wos_folders", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("parent", UUIDString()),
)

files = sa.Table(
    "wos_files", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("filename_download", sa.String(255), nullable=False),
    sa.Column("title", sa.String(255)),
    sa.Column("type", sa.String(255)),
    sa.Column("filesize", sa.BigInteger(), nullable=False),
    sa.Column("width", sa.Integer()),
    sa.Column("height", sa.Integer()),
    sa.Column("checksum", sa.String(80)),
    sa.Column("storage", sa.String(64), nullable=False),
    sa.Column("folder", UUIDString()),
    sa.Column("uploaded_by", sa.String(36)),
    sa.Column("uploaded_on", UTCDateTime(), nullable=False),
)

#: Resumable (TUS) uploads still in progress: their bytes wait in the data dir.
uploads = sa.Table(
    "wos_file_uploads", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("length", sa.BigInteger(), nullable=False),
    sa.Column("offset", sa.BigInteger(), nullable=False),
    sa.Column("metadata", sa.JSON(), nullable=False),
    sa.Column("user", sa.String(36)),
    sa.Column("role", sa.String(36)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

#: Transformed images already rendered and stored (``cache/<file>/<digest>``).
variants = sa.Table(
    "wos_file_variants", metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("file", UUIDString(), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

"""files: wos_folders, wos_files, cached variants and the resumable uploads in progress

Revision ID: files0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime, UUIDString

revision = "files0001"
down_revision = None
branch_labels = ("files",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_folders",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("parent", UUIDString(), sa.ForeignKey("wos_folders.id", ondelete="SET NULL")),
    )
    op.create_table(
        "wos_files",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("filename_download", sa.String(255), nullable=False),
        sa.Column("title", sa.String(255)),
        sa.Column("type", sa.String(255)),
        sa.Column("filesize", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("checksum", sa.String(80)),
        sa.Column("storage", sa.String(64), nullable=False),
        sa.Column("folder", UUIDString(), sa.ForeignKey("wos_folders.id", ondelete="SET NULL")),
        sa.Column("uploaded_by", sa.String(36)),
        sa.Column("uploaded_on", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_wos_files_uploaded_by", "wos_files", ["uploaded_by"])
    op.create_index("ix_wos_files_folder", "wos_files", ["folder"])
    op.create_table(
        "wos_file_variants",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("file", UUIDString(), sa.ForeignKey("wos_files.id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_wos_file_variants_file", "wos_file_variants", ["file"])
    op.create_table(
        "wos_file_uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("user", sa.String(36)),
        sa.Column("role", sa.String(36)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_wos_file_uploads_expires", "wos_file_uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_table("wos_file_uploads")
    op.drop_table("wos_file_variants")
    op.drop_table("wos_files")
    op.drop_table("wos_folders")

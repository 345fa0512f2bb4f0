"""schema: collections, fields, relations, settings

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wos_collections',
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('table_name', sa.String(length=128), nullable=False),
    sa.Column('primary_key', sa.String(length=64), server_default='id', nullable=False),
    sa.Column('pk_type', sa.String(length=16), server_default='integer', nullable=False),
    sa.Column('adopted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('collection', name=op.f('pk_wos_collections')),
    sa.UniqueConstraint('table_name', name=op.f('uq_wos_collections_table_name'))
    )
    op.create_table('wos_fields',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('options', sa.JSON(), nullable=True),
    sa.Column('nullable', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('default', sa.JSON(), nullable=True),
    sa.Column('unique', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('indexed', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('alias', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_fields')),
    sa.UniqueConstraint('collection', 'field', name=op.f('uq_wos_fields_collection_field'))
    )
    op.create_table('wos_relations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('many_collection', sa.String(length=64), nullable=False),
    sa.Column('many_field', sa.String(length=64), nullable=False),
    sa.Column('one_collection', sa.String(length=64), nullable=False),
    sa.Column('one_field', sa.String(length=64), nullable=True),
    sa.Column('junction_field', sa.String(length=64), nullable=True),
    sa.Column('on_delete', sa.String(length=16), server_default='set null', nullable=False),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_relations')),
    sa.UniqueConstraint('many_collection', 'many_field', name=op.f('uq_wos_relations_many_collection_many_field'))
    )
    op.create_table('wos_settings',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_wos_settings'))
    )


def downgrade() -> None:
    op.drop_table('wos_settings')
    op.drop_table('wos_relations')
    op.drop_table('wos_fields')
    op.drop_table('wos_collections')

"""access: roles and permissions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


BUILT_IN_ROLES = [
    {"id": "admin", "name": "admin", "description": "Full access; bypasses permissions", "admin_access": True},
    {"id": "public", "name": "public", "description": "Anonymous callers", "admin_access": False},
]


def upgrade() -> None:
    op.create_table('wos_roles',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('admin_access', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_roles')),
    sa.UniqueConstraint('name', name=op.f('uq_wos_roles_name'))
    )
    op.create_table('wos_permissions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('role', sa.String(length=36), nullable=False),
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=True),
    sa.Column('validation', sa.JSON(), nullable=True),
    sa.Column('presets', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['role'], ['wos_roles.id'], name=op.f('fk_wos_permissions_role_wos_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_permissions')),
    sa.UniqueConstraint('role', 'collection', 'action', name=op.f('uq_wos_permissions_role_collection_action'))
    )
    roles = sa.table("wos_roles", sa.column("id"), sa.column("name"), sa.column("description"),
                     sa.column("admin_access"), sa.column("created_at", sa.DateTime(timezone=True)))
    created = datetime.datetime.now(datetime.UTC)
    op.bulk_insert(roles, [{**role, "created_at": created} for role in BUILT_IN_ROLES])


def downgrade() -> None:
    op.drop_table('wos_permissions')
    op.drop_table('wos_roles')

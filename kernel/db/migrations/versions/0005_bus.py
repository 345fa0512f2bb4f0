"""bus: large event-bus messages passed by reference

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wos_bus_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_bus_messages'))
    )
    with op.batch_alter_table('wos_bus_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wos_bus_messages_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wos_bus_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wos_bus_messages_created_at'))
    op.drop_table('wos_bus_messages')

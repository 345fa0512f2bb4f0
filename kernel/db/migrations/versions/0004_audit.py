"""audit: activity and revisions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wos_activity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('collection', sa.String(length=64), nullable=True),
    sa.Column('item', sa.String(length=255), nullable=True),
    sa.Column('user', sa.String(length=36), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('origin', sa.String(length=32), nullable=True),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_activity'))
    )
    with op.batch_alter_table('wos_activity', schema=None) as batch_op:
        batch_op.create_index('ix_wos_activity_collection_item', ['collection', 'item'], unique=False)
        batch_op.create_index(batch_op.f('ix_wos_activity_timestamp'), ['timestamp'], unique=False)

    op.create_table('wos_revisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('activity', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('collection', sa.String(length=64), nullable=False),
    sa.Column('item', sa.String(length=255), nullable=False),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('delta', sa.JSON(), nullable=True),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity'], ['wos_activity.id'], name=op.f('fk_wos_revisions_activity_wos_activity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_revisions'))
    )
    with op.batch_alter_table('wos_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wos_revisions_activity'), ['activity'], unique=False)
        batch_op.create_index('ix_wos_revisions_collection_item_id', ['collection', 'item', 'id'], unique=False)
        batch_op.create_index('ix_wos_revisions_collection_timestamp', ['collection', 'timestamp'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wos_revisions', schema=None) as batch_op:
        batch_op.drop_index('ix_wos_revisions_collection_timestamp')
        batch_op.drop_index('ix_wos_revisions_collection_item_id')
        batch_op.drop_index(batch_op.f('ix_wos_revisions_activity'))

    op.drop_table('wos_revisions')
    with op.batch_alter_table('wos_activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wos_activity_timestamp'))
        batch_op.drop_index('ix_wos_activity_collection_item')

    op.drop_table('wos_activity')

"""accounts: users, sessions, api keys, one-time tokens, rate limits

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wos_rate_limits',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start', name=op.f('pk_wos_rate_limits'))
    )
    op.create_table('wos_users',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('role', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('first_name', sa.String(length=128), nullable=True),
    sa.Column('last_name', sa.String(length=128), nullable=True),
    sa.Column('email_verified', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('totp_enabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['role'], ['wos_roles.id'], name=op.f('fk_wos_users_role_wos_roles'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_users')),
    sa.UniqueConstraint('email', name=op.f('uq_wos_users_email'))
    )
    op.create_table('wos_api_keys',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('user', sa.String(length=36), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mcp_read_only', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('mcp_tools', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['user'], ['wos_users.id'], name=op.f('fk_wos_api_keys_user_wos_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_wos_api_keys_key_hash'))
    )
    op.create_table('wos_one_time_tokens',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('user', sa.String(length=36), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['user'], ['wos_users.id'], name=op.f('fk_wos_one_time_tokens_user_wos_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_one_time_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_wos_one_time_tokens_token_hash'))
    )
    op.create_table('wos_sessions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user', sa.String(length=36), nullable=False),
    sa.Column('family', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='refresh', nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.ForeignKeyConstraint(['user'], ['wos_users.id'], name=op.f('fk_wos_sessions_user_wos_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wos_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_wos_sessions_token_hash'))
    )
    with op.batch_alter_table('wos_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wos_sessions_family'), ['family'], unique=False)
        batch_op.create_index(batch_op.f('ix_wos_sessions_user'), ['user'], unique=False)
    with op.batch_alter_table('wos_api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wos_api_keys_user'), ['user'], unique=False)
    with op.batch_alter_table('wos_one_time_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_wos_one_time_tokens_kind_email', ['kind', 'email'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wos_one_time_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_wos_one_time_tokens_kind_email')
    with op.batch_alter_table('wos_api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wos_api_keys_user'))
    with op.batch_alter_table('wos_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wos_sessions_user'))
        batch_op.drop_index(batch_op.f('ix_wos_sessions_family'))

    op.drop_table('wos_sessions')
    op.drop_table('wos_one_time_tokens')
    op.drop_table('wos_api_keys')
    op.drop_table('wos_users')
    op.drop_table('wos_rate_limits')

"""groups and recall

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_member_limit', sa.Integer(), nullable=True))
    op.create_table('group_join_requests',
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('note', sa.String(length=256), nullable=True),
    sa.Column('created_at_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'group_id', 'user_id', name=op.f('pk_group_join_requests'))
    )
    op.create_table('message_mentions',
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=80), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'conversation_id', 'seq', 'user_id', name=op.f('pk_message_mentions'))
    )
    op.create_table('groups',
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('avatar_url', sa.String(length=2048), nullable=True),
    sa.Column('notice', sa.Text(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.Column('owner_id', sa.String(length=32), nullable=False),
    sa.Column('join_policy', sa.String(length=12), nullable=False),
    sa.Column('history_visible', sa.Boolean(), nullable=False),
    sa.Column('mute_all', sa.Boolean(), nullable=False),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('member_limit', sa.Integer(), nullable=False),
    sa.Column('dismissed_at_us', sa.BigInteger(), nullable=True),
    sa.Column('created_at_us', sa.BigInteger(), nullable=False),
    sa.Column('updated_at_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_groups_app_id_apps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('app_id', 'id', name=op.f('pk_groups'))
    )
    with op.batch_alter_table('conversation_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=8), server_default='member', nullable=False))
        batch_op.add_column(sa.Column('joined_seq', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('left_seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('muted_until_us', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_conversation_members_app_id_conversation_id'), ['app_id', 'conversation_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('countable', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('recalled_at_us', sa.BigInteger(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_messages_app_id_sender_id_client_msg_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_messages_app_id_conversation_id_sender_id_client_msg_id'), ['app_id', 'conversation_id', 'sender_id', 'client_msg_id'])



def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('group_member_limit')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_messages_app_id_conversation_id_sender_id_client_msg_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_messages_app_id_sender_id_client_msg_id'), ['app_id', 'sender_id', 'client_msg_id'])
        batch_op.drop_column('recalled_at_us')
        batch_op.drop_column('countable')

    with op.batch_alter_table('conversation_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_members_app_id_conversation_id'))
        batch_op.drop_column('muted_until_us')
        batch_op.drop_column('left_seq')
        batch_op.drop_column('joined_seq')
        batch_op.drop_column('role')

    op.drop_table('groups')
    op.drop_table('message_mentions')
    op.drop_table('group_join_requests')

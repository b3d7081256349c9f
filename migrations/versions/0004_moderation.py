"""content security: keyword and domain lists, settings, the moderation log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Messages gain ``risk`` (the category a review rule flagged them with) and
``hidden_at_us`` (set when a reviewer rules one a violation).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _app_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=f'fk_{table}_app_id_apps',
                                   ondelete='CASCADE')


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch_op:
        batch_op.add_column(sa.Column('risk', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hidden_at_us', sa.BigInteger(), nullable=True))

    op.create_table(
        'moderation_settings',
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.Column('overrides', sa.JSON(), nullable=False),
        sa.Column('updated_at_us', sa.BigInteger(), nullable=False),
        _app_fk('moderation_settings'),
        sa.PrimaryKeyConstraint('app_id', name='pk_moderation_settings'),
    )

    op.create_table(
        'moderation_keywords',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('word', sa.String(length=100), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('category', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=8), nullable=False),
        sa.Column('created_at_us', sa.BigInteger(), nullable=False),
        _app_fk('moderation_keywords'),
        sa.PrimaryKeyConstraint('id', name='pk_moderation_keywords'),
        sa.UniqueConstraint('app_id', 'key', name='uq_moderation_keywords_app_id_key'),
    )
    op.create_index('ix_moderation_keywords_app_id_category_id', 'moderation_keywords',
                    ['app_id', 'category', 'id'])

    op.create_table(
        'moderation_domains',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('domain', sa.String(length=253), nullable=False),
        sa.Column('list', sa.String(length=8), nullable=False),
        sa.Column('category', sa.String(length=64), nullable=False),
        sa.Column('created_at_us', sa.BigInteger(), nullable=False),
        _app_fk('moderation_domains'),
        sa.PrimaryKeyConstraint('id', name='pk_moderation_domains'),
        sa.UniqueConstraint('app_id', 'domain', name='uq_moderation_domains_app_id_domain'),
    )
    op.create_index('ix_moderation_domains_app_id_list_id', 'moderation_domains',
                    ['app_id', 'list', 'id'])

    op.create_table(
        'moderation_log',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=8), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('rule', sa.String(length=256), nullable=True),
        sa.Column('category', sa.String(length=64), nullable=True),
        sa.Column('msg_id', sa.String(length=26), nullable=True),
        sa.Column('conversation_id', sa.String(length=80), nullable=True),
        sa.Column('sender_id', sa.String(length=32), nullable=True),
        sa.Column('reporter_id', sa.String(length=32), nullable=True),
        sa.Column('excerpt', sa.Text(), nullable=True),
        sa.Column('note', sa.String(length=200), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=True),
        sa.Column('created_at_us', sa.BigInteger(), nullable=False),
        sa.Column('decided_at_us', sa.BigInteger(), nullable=True),
        _app_fk('moderation_log'),
        sa.PrimaryKeyConstraint('id', name='pk_moderation_log'),
    )
    op.create_index('ix_moderation_log_app_id_id', 'moderation_log', ['app_id', 'id'])
    op.create_index('ix_moderation_log_app_id_status_id', 'moderation_log',
                    ['app_id', 'status', 'id'])
    op.create_index('ix_moderation_log_app_id_msg_id', 'moderation_log', ['app_id', 'msg_id'])


def downgrade() -> None:
    op.drop_index('ix_moderation_log_app_id_msg_id', table_name='moderation_log')
    op.drop_index('ix_moderation_log_app_id_status_id', table_name='moderation_log')
    op.drop_index('ix_moderation_log_app_id_id', table_name='moderation_log')
    op.drop_table('moderation_log')
    op.drop_index('ix_moderation_domains_app_id_list_id', table_name='moderation_domains')
    op.drop_table('moderation_domains')
    op.drop_index('ix_moderation_keywords_app_id_category_id', table_name='moderation_keywords')
    op.drop_table('moderation_keywords')
    op.drop_table('moderation_settings')
    with op.batch_alter_table('messages') as batch_op:
        batch_op.drop_column('hidden_at_us')
        batch_op.drop_column('risk')

"""media: uploaded images and files, and the messages that show them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('media',
    sa.Column('media_id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('qr_texts', sa.Text(), nullable=True),
    sa.Column('created_at_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_media_app_id_apps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('media_id', name=op.f('pk_media'))
    )
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_app_id_owner_id_created_at_us'), ['app_id', 'owner_id', 'created_at_us'], unique=False)

    op.create_table('media_refs',
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('media_id', sa.String(length=32), nullable=False),
    sa.Column('msg_id', sa.String(length=26), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_media_refs_app_id_apps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('app_id', 'media_id', 'msg_id', name=op.f('pk_media_refs'))
    )


def downgrade() -> None:
    op.drop_table('media_refs')
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_app_id_owner_id_created_at_us'))

    op.drop_table('media')

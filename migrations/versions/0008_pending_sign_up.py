"""pending sign-ups: confirmed by email before the business and owner are made

Revision ID: 0008_pending_sign_up
Revises: 0007_push
Create Date: 2026-12-07 15:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.models.types


# revision identifiers, used by Alembic.
revision = '0008_pending_sign_up'
down_revision = '0007_push'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pending_sign_up',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('business_name', sa.String(length=120), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('plan', sa.String(length=32), nullable=False),
    sa.Column('owner_name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_sign_up')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_pending_sign_up_token_hash'))
    )
    with op.batch_alter_table('pending_sign_up', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_sign_up_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('pending_sign_up', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_sign_up_expires_at'))

    op.drop_table('pending_sign_up')

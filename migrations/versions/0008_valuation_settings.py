"""valuation_state records the currency and stablecoin policy the last valuation used

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 22:00:00

``ledger.completeness`` compares them with the configuration's to name a stale valuation
(currency or policy changed since ``reconcile prices`` ran). Nullable: a row kept by an older
version says nothing, and completeness falls back to the postings' own price currency.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('valuation_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('currency', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('stablecoin_policy', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('valuation_state', schema=None) as batch_op:
        batch_op.drop_column('stablecoin_policy')
        batch_op.drop_column('currency')

"""The whole schema on one metadata: importing this module registers every table."""

from __future__ import annotations

from sqlmodel import SQLModel

from storage import account_models, duty_models, models

metadata = SQLModel.metadata
TABLE_MODULES = (models, account_models, duty_models)

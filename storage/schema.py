"""The whole schema on one metadata: importing this module registers every table."""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel

from storage import account_models, duty_models, models

metadata = SQLModel.metadata
TABLE_MODULES = (models, account_models, duty_models)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for plain statements without ORM bookkeeping."""
    # SQLModel sets __table__ on every table=True class but does not declare it.
    return model.__table__  # type: ignore[attr-defined]

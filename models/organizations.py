import datetime as dt
import uuid

from sqlalchemy import Column, SmallInteger
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field

# Pre-dose blood-pressure hold thresholds (mmHg) for sessions whose plan sets none: a clinic's starting
# configuration (domain.md), not a published rule; admins change them with PATCH /v1/organization/settings.
DEFAULT_MAX_SYSTOLIC = 160
DEFAULT_MAX_DIASTOLIC = 100


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: uuid.UUID = id_field()
    name: str = Field(max_length=200)
    created_at: dt.datetime = instant_field(default_now=True)
    default_max_systolic: int = Field(
        default=DEFAULT_MAX_SYSTOLIC,
        sa_column=Column(SmallInteger, nullable=False, server_default=str(DEFAULT_MAX_SYSTOLIC)),
    )
    default_max_diastolic: int = Field(
        default=DEFAULT_MAX_DIASTOLIC,
        sa_column=Column(SmallInteger, nullable=False, server_default=str(DEFAULT_MAX_DIASTOLIC)),
    )

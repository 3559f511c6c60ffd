import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Boolean, Column, Float, SmallInteger, text
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field

# Pre-dose blood-pressure hold thresholds (mmHg) for sessions whose plan sets none: a clinic's starting
# configuration (domain.md), not a published rule; admins change them with PATCH /v1/organization/settings.
DEFAULT_MAX_SYSTOLIC = 160
DEFAULT_MAX_DIASTOLIC = 100
# Dose ceilings for every session, planned or not (domain.md): intranasal esketamine 84 mg (the label's maximum);
# ketamine iv, im or subcutaneous 1.0 mg/kg (the highest dose of the anxiety dose-ranging studies, Glue et al.
# 2017/2018); oral, sublingual and intranasal ketamine have no default ceiling (null) until an admin sets one.
DEFAULT_ESKETAMINE_MAX_MG = 84.0
DEFAULT_KETAMINE_PARENTERAL_MAX_MG_PER_KG = 1.0


def _setting(default: float, sa_type: type[SmallInteger] | type[Float]) -> Any:
    """A required setting whose default is also the column's server default (rows that predate it get it too)."""
    return Field(default=default, sa_column=Column(sa_type, nullable=False, server_default=str(default)))


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: uuid.UUID = id_field()
    name: str = Field(max_length=200)
    created_at: dt.datetime = instant_field(default_now=True)
    default_max_systolic: int = _setting(DEFAULT_MAX_SYSTOLIC, SmallInteger)
    default_max_diastolic: int = _setting(DEFAULT_MAX_DIASTOLIC, SmallInteger)
    esketamine_max_mg: float = _setting(DEFAULT_ESKETAMINE_MAX_MG, Float)
    ketamine_parenteral_max_mg_per_kg: float = _setting(DEFAULT_KETAMINE_PARENTERAL_MAX_MG_PER_KG, Float)
    ketamine_oral_max_mg_per_kg: float | None = Field(default=None, sa_type=Float)
    ketamine_sublingual_max_mg_per_kg: float | None = Field(default=None, sa_type=Float)
    ketamine_intranasal_max_mg_per_kg: float | None = Field(default=None, sa_type=Float)
    # Staff without confirmed two-factor sign-in reach only /v1/me… (docs/accounts.md).
    require_staff_mfa: bool = Field(default=False, sa_column=Column(Boolean, nullable=False,
                                                                    server_default=text("false")))

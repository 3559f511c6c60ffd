"""The organization's settings: the default pre-dose blood-pressure hold thresholds of its sessions."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field, StrictInt, field_validator
from pydantic_core import PydanticCustomError

from api.plans.schemas import DIASTOLIC_RANGE, SYSTOLIC_RANGE
from api.types import RequestModel


class OrganizationSettings(BaseModel):
    organization_id: uuid.UUID
    name: str
    default_max_systolic: int = Field(description="mmHg; for sessions whose plan sets no safety thresholds")
    default_max_diastolic: int = Field(description="mmHg; for sessions whose plan sets no safety thresholds")


class OrganizationSettingsUpdate(RequestModel):
    """Either threshold or both, within the bounds of a plan's `safety`; diastolic stays below systolic."""

    default_max_systolic: StrictInt | None = Field(default=None, ge=SYSTOLIC_RANGE[0], le=SYSTOLIC_RANGE[1])
    default_max_diastolic: StrictInt | None = Field(default=None, ge=DIASTOLIC_RANGE[0], le=DIASTOLIC_RANGE[1])

    @field_validator("default_max_systolic", "default_max_diastolic")
    @classmethod
    def _not_cleared(cls, value: int | None) -> int:
        # Runs only for values sent: sessions always need a threshold to compare with.
        if value is None:
            raise PydanticCustomError("not_null", "Cannot be null")
        return value

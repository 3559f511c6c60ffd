"""The organization's settings: the default pre-dose blood-pressure hold thresholds of its sessions and the dose
ceilings every session is checked against (docs/sessions.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt

from api.plans.schemas import DIASTOLIC_RANGE, ESKETAMINE_MAX_MG, MAX_DOSE, SYSTOLIC_RANGE, DoseUnit
from api.types import RequestModel, never_null

# A ceiling may be stricter than the label (esketamine) or the bound of a plan's mg/kg dose, never looser.
EsketamineCeiling = Annotated[StrictFloat, Field(gt=0, le=ESKETAMINE_MAX_MG, description="mg per session")]
KetamineCeiling = Annotated[StrictFloat, Field(gt=0, le=MAX_DOSE[DoseUnit.mg_per_kg],
                                               description="mg per kg of the session's weight_kg")]


class OrganizationSettings(BaseModel):
    organization_id: uuid.UUID
    name: str
    default_max_systolic: int = Field(description="mmHg; for ketamine sessions whose plan sets no safety thresholds")
    default_max_diastolic: int = Field(description="mmHg; for ketamine sessions whose plan sets no safety thresholds")
    esketamine_max_mg: float = Field(description="Dose ceiling of intranasal esketamine, mg per session")
    ketamine_parenteral_max_mg_per_kg: float = Field(description="Dose ceiling of ketamine iv, im and subcutaneous")
    ketamine_oral_max_mg_per_kg: float | None = Field(description="Dose ceiling of oral ketamine; null: none")
    ketamine_sublingual_max_mg_per_kg: float | None = Field(description="Dose ceiling of sublingual ketamine; "
                                                                        "null: none")
    ketamine_intranasal_max_mg_per_kg: float | None = Field(description="Dose ceiling of intranasal ketamine; "
                                                                        "null: none")
    require_staff_mfa: bool = Field(description="Staff without two-factor sign-in reach only /v1/me… "
                                                "(docs/accounts.md)")


class OrganizationSettingsUpdate(RequestModel):
    """Any of the settings. Thresholds within the bounds of a plan's `safety`, diastolic below systolic; ceilings
    above 0, esketamine at most the label's 84 mg, ketamine at most 2.0 mg/kg; only the oral, sublingual and
    intranasal ketamine ceilings may be cleared (null: no ceiling). `require_staff_mfa`: true or false."""

    default_max_systolic: StrictInt | None = Field(default=None, ge=SYSTOLIC_RANGE[0], le=SYSTOLIC_RANGE[1])
    default_max_diastolic: StrictInt | None = Field(default=None, ge=DIASTOLIC_RANGE[0], le=DIASTOLIC_RANGE[1])
    esketamine_max_mg: EsketamineCeiling | None = None
    ketamine_parenteral_max_mg_per_kg: KetamineCeiling | None = None
    ketamine_oral_max_mg_per_kg: KetamineCeiling | None = None
    ketamine_sublingual_max_mg_per_kg: KetamineCeiling | None = None
    ketamine_intranasal_max_mg_per_kg: KetamineCeiling | None = None
    require_staff_mfa: StrictBool | None = None

    # Runs only for values sent: sessions always need a threshold to compare with, and the label's and the
    # studies' ceilings may be tightened but not removed.
    _not_cleared = never_null("default_max_systolic", "default_max_diastolic", "esketamine_max_mg",
                              "ketamine_parenteral_max_mg_per_kg", "require_staff_mfa")

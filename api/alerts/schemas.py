import datetime as dt
import uuid

from pydantic import BaseModel, Field

from api.pagination import Page
from api.types import RequestModel, trimmed_text
from models.alerts import AlertPriority, AlertStatus


class AlertPublic(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    kind: str = Field(description="phq9_item9_positive | severe_adverse_event | session_warning")
    priority: AlertPriority
    status: AlertStatus
    source_type: str = Field(description="What raised it: score | session")
    source_id: uuid.UUID
    message: str
    raised_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: uuid.UUID | None
    acknowledgement_note: str | None


class AlertPage(Page[AlertPublic]):
    pass


class Acknowledgement(RequestModel):
    note: trimmed_text(2000) = Field(description="What was done, e.g. 'called the patient the same day'")

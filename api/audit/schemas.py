import datetime as dt
import uuid

from pydantic import BaseModel


class AuditEventPublic(BaseModel):
    id: uuid.UUID
    at: dt.datetime
    actor_id: uuid.UUID | None
    actor_type: str
    action: str
    outcome: str
    resource_type: str | None
    resource_id: str | None
    patient_id: uuid.UUID | None
    request_id: str | None

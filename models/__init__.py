"""SQLModel tables, one module per domain. Importing this package registers every table on SQLModel.metadata."""

from models.api_clients import ApiClient
from models.alerts import Alert, AlertPriority, AlertStatus
from models.audit import AuditEvent
from models.dosing_sessions import DosingSession, SessionAddendum, SessionStatus
from models.idempotency import IdempotencyRecord
from models.organizations import Organization
from models.outbox import OutboxEvent
from models.patients import CareTeamMember, CareTeamRole, EnrollmentCode, Patient
from models.plans import PlanRevision, PlanStatus, TreatmentPlan
from models.scores import Score
from models.users import AccessRevocation, LoginThrottle, RecoveryCode, RefreshToken, Role, User, UserTotp
from models.webhooks import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookStatus

__all__ = [
    "AccessRevocation",
    "Alert",
    "AlertPriority",
    "AlertStatus",
    "ApiClient",
    "AuditEvent",
    "CareTeamMember",
    "CareTeamRole",
    "DeliveryStatus",
    "DosingSession",
    "EnrollmentCode",
    "IdempotencyRecord",
    "LoginThrottle",
    "Organization",
    "OutboxEvent",
    "Patient",
    "PlanRevision",
    "PlanStatus",
    "RecoveryCode",
    "RefreshToken",
    "Role",
    "Score",
    "SessionAddendum",
    "SessionStatus",
    "TreatmentPlan",
    "User",
    "UserTotp",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookStatus",
]

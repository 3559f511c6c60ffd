"""SQLModel tables, one module per domain. Importing this package registers every table on SQLModel.metadata."""

from models.audit import AuditEvent
from models.organizations import Organization
from models.patients import CareTeamMember, CareTeamRole, EnrollmentCode, Patient
from models.users import LoginThrottle, RefreshToken, Role, User

__all__ = [
    "AuditEvent",
    "CareTeamMember",
    "CareTeamRole",
    "EnrollmentCode",
    "LoginThrottle",
    "Organization",
    "Patient",
    "RefreshToken",
    "Role",
    "User",
]

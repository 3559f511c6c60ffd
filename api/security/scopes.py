"""OAuth scopes of API clients (the contract's "Integrations"): each admits a client to exactly the routes that name
it (docs/access.md has the table). Users' tokens carry no scopes: their role and care-team role decide."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    patients_read = "patients:read"
    plans_read = "plans:read"
    sessions_read = "sessions:read"
    scores_read = "scores:read"
    scores_write = "scores:write"
    alerts_read = "alerts:read"
    webhooks_manage = "webhooks:manage"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


def parse_scope(value: str) -> frozenset[Scope] | None:
    """A space-delimited scope string (RFC 6749 section 3.3) as scopes; None if any is unknown."""
    try:
        return frozenset(Scope(part) for part in value.split(" ") if part)
    except ValueError:
        return None


def scope_string(scopes: frozenset[Scope] | frozenset[str]) -> str:
    """Canonical form: sorted, space-delimited."""
    return " ".join(sorted(str(scope) for scope in scopes))

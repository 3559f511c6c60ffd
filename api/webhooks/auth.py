"""Who may manage the organization's webhooks: the one dependency every webhook route takes.

The organization's admins, and its API clients whose token holds the `webhooks:manage` scope (an integration that
registers its own endpoint). Either reaches only its own organization's webhooks.
"""

from typing import Annotated

from fastapi import Depends

from api.deps import require_roles
from api.security.scopes import Scope
from api.security.tokens import Caller
from models.users import Role

WebhookManager = Annotated[Caller, Depends(require_roles(Role.admin, scope=Scope.webhooks_manage))]

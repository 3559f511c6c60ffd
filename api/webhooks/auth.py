"""Who may manage the organization's webhooks: the one dependency every webhook route takes.

Today the organization's admins. API clients holding the `webhooks:manage` scope are added here, once, for every
route at the same time.
"""

from api.deps import AdminCaller

WebhookManager = AdminCaller

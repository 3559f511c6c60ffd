"""Delta sync, one scheme for every list a phone mirrors (scores, plans, sessions): `?updated_since=` answers every
change at or after that server time, oldest change first (`updated_at`, then id), and every page answers the
`sync_watermark` to send next time (docs/scores.md).

The watermark is taken before the first page is read and trails the server clock by `SYNC_MARGIN`, so a change
stamped before it but committed late is still at or after it; later pages carry the first page's value in their
cursor, because a row committed late may sort before the cursor and be passed by them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Query

from api import pagination
from api.errors import ValidationFailed
from api.types import BoundedInstant, instant_in_range
from models.base import utcnow

# Must exceed the longest time between stamping `updated_at` and committing (one request's transaction, milliseconds
# normally) plus clock skew between API hosts.
SYNC_MARGIN = dt.timedelta(minutes=5)

UPDATED_SINCE = ("Delta sync: changes at or after this server time, oldest change first; send the previous "
                 "answer's sync_watermark")
WATERMARK = "Send as the next updated_since (keep the first page's value when paging; docs/scores.md)"

UpdatedSinceQuery = Annotated[BoundedInstant | None, Query(description=UPDATED_SINCE)]


def first_page_watermark(cursor: str | None) -> dt.datetime:
    """Now minus the margin on a first page; the value the first page put into the cursor on later pages."""
    carried = pagination.carried(cursor)
    if carried is None:
        return utcnow() - SYNC_MARGIN
    try:
        return instant_in_range(dt.datetime.fromisoformat(carried))
    except ValueError:
        raise ValidationFailed.at(["query", "cursor"], "Invalid cursor") from None


def refuse_filter(name: str) -> ValidationFailed:
    """A filter on a value that changes (a status) cannot be combined with updated_since: a record that left the
    filter would simply stop appearing, and the phone would keep its stale copy."""
    return ValidationFailed(
        f"{name} cannot be combined with updated_since: sync every change, then filter on the phone",
        errors=[{"loc": ["query", name], "msg": "Not combinable with updated_since", "type": "filter_with_sync"}])

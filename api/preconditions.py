"""If-Match on revised resources (plans, session drafts): optimistic concurrency with strong entity tags."""

from __future__ import annotations

from api.errors import PreconditionFailed, PreconditionRequired


def check_if_match(current_tag: str, if_match: str | None, *, noun: str, revision: int) -> None:
    """428 without a usable If-Match, 412 unless it names `current_tag` (RFC 9110 13.1.1: a list matches if any of
    its tags does; comparison is strong, so a weak W/"…" tag never matches)."""
    if if_match is None:
        raise PreconditionRequired(f"Send If-Match with the {noun}'s ETag (from GET /v1/{noun}s/{{{noun}_id}})")
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" in tags:
        raise PreconditionRequired(f"If-Match: * does not protect against lost updates; send the {noun}'s ETag")
    if current_tag not in tags:
        raise PreconditionFailed(
            f"The {noun} has changed since you read it (now revision {revision}); read it again and reapply your "
            "change"
        )

"""The one pagination scheme: keyset cursors over a stable, unique ordering.

A cursor encodes the sort key of the last item returned; the next page starts strictly after it. Because the key
includes the primary key and never changes for a row, a cursor survives concurrent inserts without repeating
items, and rows committed before the next page is read are not skipped.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Integer, Select, String, TypeDecorator, and_, bindparam, or_
from sqlalchemy.orm import InstrumentedAttribute

from api.errors import ValidationFailed
from api.types import date_in_range, instant_in_range

T = TypeVar("T")

DEFAULT_LIMIT = 50
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_LIMIT = 200

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (default 50, max 200)")]
CursorQuery = Annotated[
    str | None, Query(max_length=1024, description="Opaque cursor from the previous page's next_cursor")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


SortKey = tuple[InstrumentedAttribute, Literal["asc", "desc"]]


def _pack(raw: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def _encode(values: Sequence[Any], carry: str | None) -> str:
    position = [v.isoformat() if isinstance(v, dt.date | dt.datetime) else str(v) for v in values]
    return _pack({"after": position, "carry": carry} if carry is not None else position)


def _unpack(cursor: str) -> tuple[list[Any], str | None]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(raw, dict):
            position, carry = raw.get("after"), raw.get("carry")
            if not isinstance(carry, str):
                raise ValueError("carry must be a string")
            raw = position
        else:
            carry = None
        if not isinstance(raw, list):
            raise ValueError("wrong shape")
        return raw, carry
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid_cursor() from None


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed.at(["query", "cursor"], "Invalid cursor")


def _decode(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    position, _ = _unpack(cursor)
    try:
        if len(position) != len(keys):
            raise ValueError("wrong length")
        return [_parse(value, _python_type(column)) for value, (column, _) in zip(position, keys, strict=True)]
    except (ValueError, TypeError, NotImplementedError):
        raise invalid_cursor() from None


def encode_position(values: Sequence[str | int]) -> str:
    """A cursor for a list ordered in Python (by values computed per row): the last item's sort key, as JSON
    strings and integers. The same opaque format as every other cursor."""
    return _pack(list(values))


def decode_position(cursor: str, types: Sequence[type[str] | type[int]]) -> tuple[str | int, ...]:
    """The sort key an `encode_position` cursor carries, checked against the key's layout (so that comparing it
    with the rows' keys cannot fail); 422 otherwise."""
    position, _ = _unpack(cursor)
    if len(position) != len(types) or not all(
        type(value) is kind and (kind is not int or abs(value) < 2**63)
        and (kind is not str or "\x00" not in value)
        for value, kind in zip(position, types, strict=False)
    ):
        raise invalid_cursor()
    return tuple(position)


def carried(cursor: str | None) -> str | None:
    """The value a list put into its cursors with `page_of(..., carry=…)`: state that must stay the same on every
    page of one listing (e.g. the delta-sync watermark of its first page). The caller validates it."""
    return _unpack(cursor)[1] if cursor else None


def _python_type(column: InstrumentedAttribute) -> type:
    # SQLModel's AutoString reports `object`; every string column decodes as str.
    storage = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    return str if isinstance(storage, String) else storage.python_type


def _parse(value: Any, python_type: type) -> Any:
    """A cursor value back into its column's type, within what the column can hold: a cursor is client input, and
    a value the database cannot compare with would be a 500, not a 422."""
    if not isinstance(value, str):
        raise TypeError("cursor values are strings")
    if python_type is uuid.UUID:
        return uuid.UUID(value)
    if python_type is dt.datetime:
        return instant_in_range(dt.datetime.fromisoformat(value))
    if python_type is dt.date:
        return date_in_range(dt.date.fromisoformat(value))
    if python_type is int:
        parsed = int(value)
        if not INT32_MIN <= parsed <= INT32_MAX:
            raise ValueError("beyond a 32-bit integer column")
        return parsed
    if python_type is str:
        if "\x00" in value:
            raise ValueError("NUL in a text value")
        return value
    raise TypeError(python_type)


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """(k1, k2, …) strictly after (v1, v2, …) in the given per-column directions."""
    clauses = []
    for i, (column, direction) in enumerate(keys):
        beyond = column > values[i] if direction == "asc" else column < values[i]
        clauses.append(and_(*[keys[j][0] == values[j] for j in range(i)], beyond))
    return or_(*clauses)


def keyset(stmt: Select, keys: Sequence[SortKey], *, limit: int, cursor: str | None) -> Select:
    """Orders, filters past the cursor and fetches one row more than asked, to know whether a next page exists."""
    if cursor:
        stmt = stmt.where(_after(keys, _decode(cursor, keys)))
    order = [column.asc() if direction == "asc" else column.desc() for column, direction in keys]
    return stmt.order_by(*order).limit(limit + 1)


def keyset_once(stmt: Select, keys: Sequence[SortKey], *, after: bool) -> Select:
    """`keyset` for a statement built once and run many times (api/statements.py): the cursor's values and the
    limit (one more row than asked) are the bound parameters `cursor_parameters` names."""
    if after:
        stmt = stmt.where(_after(keys, [bindparam(f"after_{column.key}", type_=column.type) for column, _ in keys]))
    order = [column.asc() if direction == "asc" else column.desc() for column, direction in keys]
    return stmt.order_by(*order).limit(bindparam("limit_and_one", type_=Integer))


def cursor_parameters(keys: Sequence[SortKey], *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The parameters of a `keyset_once` statement for this page."""
    values = _decode(cursor, keys) if cursor else []
    return {"limit_and_one": limit + 1, **{f"after_{column.key}": value for (column, _), value in zip(keys, values)}}


def page_of(
    rows: Sequence[T], keys: Sequence[SortKey], *, limit: int, carry: str | None = None
) -> tuple[list[T], str | None]:
    """Trims the look-ahead row and builds the next cursor from the last row kept (carrying `carry` along)."""
    items = list(rows[:limit])
    if len(rows) <= limit:
        return items, None
    last = items[-1]
    return items, _encode([getattr(last, column.key) for column, _ in keys], carry)

"""Validated field types and the base class shared by request schemas."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

MIN_PASSWORD_LENGTH = 12  # NIST SP 800-63B; no composition rules, a generous maximum.


@lru_cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("must be an IANA time zone name such as 'America/New_York'")
    return value


def _check_birth_date(value: dt.date) -> dt.date:
    if value > dt.date.today() or value.year < 1900:
        raise ValueError("must be a real date of birth (not in the future, not before 1900)")
    return value


# The widest instants and dates a client may send anywhere (query parameters, cursors): far beyond any record's, and
# inside the calendar on every backend even once converted to UTC (year 1 at +01:00 is year 0 in UTC, which neither
# Python nor the drivers can represent).
EARLIEST_INSTANT = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST_INSTANT = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
INSTANT_RANGE = "must be from 1900-01-01T00:00:00Z to before 2200-01-01T00:00:00Z"
DATE_RANGE = "must be a date from 1900-01-01 to 2199-12-31"


def instant_in_range(value: dt.datetime) -> dt.datetime:
    """The instant in UTC; ValueError when it has no offset or lies outside [EARLIEST_INSTANT, LATEST_INSTANT)."""
    if value.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        raise PydanticCustomError("instant_out_of_range", INSTANT_RANGE) from None
    if not EARLIEST_INSTANT <= utc < LATEST_INSTANT:
        raise PydanticCustomError("instant_out_of_range", INSTANT_RANGE)
    return utc


def date_in_range(value: dt.date) -> dt.date:
    if not EARLIEST_INSTANT.date() <= value < LATEST_INSTANT.date():
        raise PydanticCustomError("date_out_of_range", DATE_RANGE)
    return value


# For query parameters: an RFC 3339 instant with an offset, answered in UTC, or a calendar date, within range.
BoundedInstant = Annotated[AwareDatetime, AfterValidator(instant_in_range)]
BoundedDate = Annotated[dt.date, AfterValidator(date_in_range)]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[EmailStr, StringConstraints(max_length=320), AfterValidator(str.lower)]
Password = Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=256)]
Timezone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]
BirthDate = Annotated[dt.date, AfterValidator(_check_birth_date)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(v) for v in value)
    return False


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused (a field that is not ours could be one that grants
    power, like `role` or `patient_id`), and so are NUL characters anywhere (PostgreSQL text cannot hold them)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def with_example(body: dict[str, Any]) -> ConfigDict:
    """A request model's configuration with an example body in its OpenAPI schema (for client generators and the
    interactive docs); merged with RequestModel's own configuration."""
    return ConfigDict(json_schema_extra={"examples": [body]})


def trimmed_text(max_length: int) -> Any:
    """A required text: surrounding whitespace removed, then 1 to `max_length` characters."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)]


def rule_errors(domain: str, *problems: tuple[tuple[str | int, ...], str]) -> ValidationError:
    """A validation error for rules that span fields, located at each field that has to change (relative to the
    model raising it), with error type `<domain>_rule`."""
    return ValidationError.from_exception_data(
        domain,
        [InitErrorDetails(type=PydanticCustomError(f"{domain}_rule", message), loc=loc, input=None)
         for loc, message in problems],
    )


def diastolic_below(systolic_field: str, diastolic_field: str) -> Any:
    """A model's validator: blood pressure's diastolic value must be below its systolic one (plan thresholds and
    session vitals alike)."""

    def check(cls: type, diastolic: int, info: ValidationInfo) -> int:
        systolic = info.data.get(systolic_field)
        if systolic is not None and diastolic >= systolic:
            raise PydanticCustomError("diastolic_not_below_systolic", f"Must be below {systolic_field}")
        return diastolic

    return field_validator(diastolic_field)(check)


def never_null(*fields: str) -> Any:
    """A PATCH body's validator refusing an explicit null for `fields` (optional to send, but never cleared): it runs
    only for values sent, so leaving a field out still means "unchanged"."""

    def check(cls: type, value: object) -> object:
        if value is None:
            raise PydanticCustomError("not_null", "Cannot be null")
        return value

    return field_validator(*fields)(classmethod(check))

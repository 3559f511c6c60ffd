"""Validated field types shared by request schemas."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, EmailStr, StringConstraints

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


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[EmailStr, StringConstraints(max_length=320), AfterValidator(str.lower)]
Password = Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=256)]
Timezone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]
BirthDate = Annotated[dt.date, AfterValidator(_check_birth_date)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

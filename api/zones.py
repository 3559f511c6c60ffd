"""A patient's time zone as PostgreSQL is to be told it.

PostgreSQL reads a zone name that is also one of its time zone abbreviations as the abbreviation: `timezone('CET',
…)` is +01:00 all year, where the IANA zone CET, which the API accepts and Python's zoneinfo applies, keeps summer
time. Of the names the API accepts (api.types), four mean a different clock to PostgreSQL; each is, since tzdata 2024b,
an alias of the zone given here (with the same rules since 1997 before that). The others it reads as abbreviations
(EST, GMT, HST, MST, UCT, UTC, Zulu) are fixed offsets either way. Every SQL conversion by a patient's zone goes
through `in_postgres` (tests/test_dashboard.py checks every zone both know, around every clock change).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, case

POSTGRES_NAMES = {"CET": "Europe/Brussels", "MET": "Europe/Brussels", "EET": "Europe/Athens", "WET": "Europe/Lisbon"}


def in_postgres(zone: ColumnElement[str]) -> ColumnElement[str]:
    """The zone column, renamed where PostgreSQL would read it as an abbreviation."""
    return case(POSTGRES_NAMES, value=zone, else_=zone)


def in_postgres_sql(column: str) -> str:
    """`in_postgres` in SQL text, for statements written as text."""
    renamed = " ".join(f"WHEN '{name}' THEN '{zone}'" for name, zone in POSTGRES_NAMES.items())
    return f"(CASE {column} {renamed} ELSE {column} END)"

"""Score rows for the CSV and NDJSON exports: one flat record per score, the same fields in both.

Items are columns `item_1` … `item_9` (the longest instrument, PHQ-9; empty where an instrument has fewer), so a
spreadsheet or a statistics package reads them without splitting a field; NDJSON carries them as the `items` array.
Free-text notes are left out of both: research and billing pulls need the numbers, and a note is read per score
through the API by whoever may see it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from api.instruments.registry import INSTRUMENTS

MAX_ITEMS = max(len(instrument.items) for instrument in INSTRUMENTS.values())
ITEM_COLUMNS = [f"item_{n}" for n in range(1, MAX_ITEMS + 1)]
FIELDS = ["id", "patient_id", "patient_external_id", "instrument", "total", "severity", "recorded_at",
          "recorded_utc_offset", "received_at", "source", "updated_at", "deleted_at"]
CSV_COLUMNS = FIELDS[:5] + ITEM_COLUMNS + FIELDS[5:]


def instant(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A score row (score columns and the patient's `external_id`) as the export's fields, JSON-ready."""
    return {
        "id": str(row["id"]), "patient_id": str(row["patient_id"]), "patient_external_id": row["external_id"],
        "instrument": row["instrument"], "total": row["total"], "items": list(row["items"]),
        "severity": row["severity"], "recorded_at": instant(row["recorded_at"]),
        "recorded_utc_offset": _offset(row["recorded_offset_minutes"]), "received_at": instant(row["received_at"]),
        "source": row["source"], "updated_at": instant(row["updated_at"]), "deleted_at": instant(row["deleted_at"]),
    }


def ndjson_lines(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records)


class CsvWriter:
    """Renders rows to CSV text chunk by chunk (RFC 4180, CRLF line ends), header first."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def header(self) -> str:
        return self._take([CSV_COLUMNS])

    def rows(self, records: Iterable[Mapping[str, Any]]) -> str:
        lines = []
        for r in records:
            items = list(r["items"]) + [""] * (MAX_ITEMS - len(r["items"]))
            lines.append([r[f] for f in FIELDS[:5]] + items + ["" if r[f] is None else r[f] for f in FIELDS[5:]])
        return self._take(lines)

    def _take(self, lines: list[list[Any]]) -> str:
        self._writer.writerows(lines)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def filename(kind: str, subject: uuid.UUID | str, extension: str, now: dt.datetime) -> str:
    return f"calmtrack-{kind}-{subject}-{now.strftime('%Y%m%dT%H%M%SZ')}.{extension}"

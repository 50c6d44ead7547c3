"""Rows of the journal as values and back: outcomes, recognition results, timestamps (UTC, ISO 8601).

Kept apart from journal.py, which owns the connection, the schema and the queries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .models import Outcome, Recognition, RecognitionResult, RoleGrant, Status


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def recognition_json(rec: RecognitionResult | None) -> str | None:
    if rec is None:
        return None
    return json.dumps(
        {
            "recognition": rec.recognition.value,
            "subscriptions": rec.subscriptions,
            "error_code": rec.error_code,
            "grants": [[g.scope, g.role_definition_id, g.role_name, g.eligibility] for g in rec.grants],
        }
    )


def recognition_of(text: str | None) -> RecognitionResult | None:
    if not text:
        return None
    data = json.loads(text)
    return RecognitionResult(
        recognition=Recognition(data["recognition"]),
        subscriptions=int(data.get("subscriptions", 0)),
        grants=tuple(RoleGrant(*g) for g in data.get("grants", [])),
        error_code=data.get("error_code"),
    )


#: Columns whose values repeat across a run's rows (a partner ID, a status's error text, a customer's name):
#: `OutcomeReader` keeps one copy of each value, so 100,000 outcomes do not hold 100,000 equal strings.
_REPEATED = ("customer", "target_partner_id", "credential_type", "linked_partner_id", "partner_name",
             "error_code", "error_message", "source")


class OutcomeReader:
    """Outcomes from journal rows, sharing equal values between rows (they are immutable, so sharing is safe).

    One reader per query: its caches hold the distinct values of that query's rows and go with it.
    """

    __slots__ = ("_dates", "_recognitions", "_values")

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._dates: dict[str, datetime | None] = {}
        self._recognitions: dict[str, RecognitionResult | None] = {}

    def same(self, value: Any) -> Any:
        """The one kept copy of a text `value`; anything else as it is (1, 1.0 and True are equal keys)."""
        return self._values.setdefault(value, value) if type(value) is str else value

    def expiry(self, text: str | None) -> datetime | None:
        """A credential's expiry: many identities share one (a rotation day), so parsed values are shared."""
        if not text:
            return None
        parsed = self._dates.get(text)
        if parsed is None:
            parsed = self._dates[text] = parse_dt(text)
        return parsed

    def recognition(self, text: str | None) -> RecognitionResult | None:
        """Recognition results repeat (no roles, one eligible role): one value per distinct journal text."""
        if not text:
            return None
        try:
            return self._recognitions[text]
        except KeyError:
            found = self._recognitions[text] = recognition_of(text)
            return found

    def extras(self, text: str) -> tuple[tuple[str, str], ...]:
        """The inventory's extra columns: names and values repeat (a region, an owner)."""
        same = self.same
        return tuple((same(k), same(v)) for k, v in json.loads(text).items())

    def outcome(self, row: dict[str, Any]) -> Outcome:
        """The outcome of one row (a dict this reader may change: its repeated values are replaced by shared ones)."""
        values = self._values
        for column in _REPEATED:
            value = row[column]
            if type(value) is str:
                row[column] = values.setdefault(value, value)
        return _outcome(row, self.expiry(row["credential_expires_on"]), self.recognition(row["recognition"]),
                        self.extras(row["extra"]))


def outcome_of_row(row: dict[str, Any]) -> Outcome:
    return _outcome(row, parse_dt(row["credential_expires_on"]), recognition_of(row["recognition"]),
                    tuple(json.loads(row["extra"]).items()))


def _outcome(row: dict[str, Any], expires: datetime | None, recognition: RecognitionResult | None,
             extra: tuple[tuple[str, str], ...]) -> Outcome:
    return Outcome(
        key=row["key"],
        customer=row["customer"],
        tenant_id=row["tenant_id"],
        client_id=row["client_id"],
        target_partner_id=row["target_partner_id"],
        status=Status(row["status"]),
        credential_type=row["credential_type"],
        linked_partner_id=row["linked_partner_id"],
        partner_name=row["partner_name"],
        object_id=row["object_id"],
        created_time=parse_dt(row["created_time"]),
        updated_time=parse_dt(row["updated_time"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        attempts=row["attempts"],
        elapsed_s=row["elapsed_s"],
        credential_expires_on=expires,
        checked_at=parse_dt(row["checked_at"]),
        wait_s=row["wait_s"],
        recognition=recognition,
        extra=extra,
        source=row["source"],
        line=row["line"],
        secret_uri=row.get("secret_uri"),
        trace_id=row.get("trace_id"),
        correlation_id=row.get("correlation_id"),
    )

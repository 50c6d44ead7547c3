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


def outcome_of_row(row: dict[str, Any]) -> Outcome:
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
        credential_expires_on=parse_dt(row["credential_expires_on"]),
        checked_at=parse_dt(row["checked_at"]),
        wait_s=row["wait_s"],
        recognition=recognition_of(row["recognition"]),
        extra=tuple(json.loads(row["extra"]).items()),
        source=row["source"],
        line=row["line"],
        secret_uri=row.get("secret_uri"),
        trace_id=row.get("trace_id"),
        correlation_id=row.get("correlation_id"),
    )

"""The report's judgements about one outcome: is it covered, what is its fix, which colour, what is safe to show.

Pure functions over `models` values and plain text (no pandas, no journal), so the view, the comparison and
every output agree on one definition of each rule.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ..models import COVERED_STATUSES, Command, Recognition, Status

#: Statuses that mean something is broken and a person has to act (as opposed to "not linked yet").
FAILURE_STATUSES = frozenset(
    {
        Status.CREDENTIAL_MISSING,
        Status.CREDENTIAL_FORBIDDEN,
        Status.CREDENTIAL_DISABLED,
        Status.CREDENTIAL_EXPIRED,
        Status.CREDENTIAL_INVALID,
        Status.SIGN_IN_FAILED,
        Status.PARTNER_ID_INVALID,
        Status.FAILED,
        Status.SKIPPED,
    }
)

#: Statuses that say, from a successful read, that the identity is *not* linked to its target now.
NOT_LINKED_STATUSES = frozenset(
    {Status.NOT_LINKED, Status.WOULD_LINK, Status.WOULD_RELINK, Status.LINKED_ELSEWHERE, Status.UNLINKED}
)

#: The fix, in words, for each status that needs one. Error codes below take precedence.
FIX_BY_STATUS: dict[Status, str] = {
    Status.LINKED_ELSEWHERE: "linked to a different partner ID — confirm with the customer, then relink it "
    "to the target partner ID",
    Status.WOULD_LINK: "not linked yet — run `pal-orchestrator link`",
    Status.WOULD_RELINK: "linked to a different partner ID — run `pal-orchestrator link` to relink it",
    Status.NOT_LINKED: "not linked — run `pal-orchestrator link`",
    Status.CREDENTIAL_MISSING: "secret not found in Key Vault — store it, or correct the secret name in the inventory",
    Status.CREDENTIAL_FORBIDDEN: "Key Vault refused to read the secret — grant the operator "
    "Key Vault Secrets User on the vault",
    Status.CREDENTIAL_DISABLED: "secret disabled in Key Vault — enable it or store a new version",
    Status.CREDENTIAL_EXPIRED: "secret expired in Key Vault — rotate it",
    Status.CREDENTIAL_INVALID: "secret in Key Vault is not a usable credential — store the client secret, "
    "PFX or PEM again",
    Status.SIGN_IN_FAILED: "sign-in to the customer tenant failed — check the credential and the app "
    "registration (see error_message)",
    Status.PARTNER_ID_INVALID: "partner ID rejected by Microsoft — use the partner location ID (PLA) "
    "from Partner Center",
    Status.FAILED: "unexpected failure — read error_message, fix the cause and re-run",
    Status.SKIPPED: "invalid inventory row — correct it as error_message says, then re-run",
}

#: More precise fixes for known error codes (matched case-insensitively; bare digits mean AADSTS).
FIX_BY_ERROR_CODE: dict[str, str] = {
    "invalid_row": FIX_BY_STATUS[Status.SKIPPED],
    "AADSTS7000215": "client secret rejected by Entra ID — rotate it and store the new value in Key Vault",
    "AADSTS7000222": "client secret expired in Entra ID — create a new one and store it in Key Vault",
    "AADSTS700027": "certificate not registered on the app — upload it to the app registration",
    "AADSTS700016": "app not found in the customer tenant — check tenant_id and client_id, or consent the app there",
    "AADSTS90002": "tenant not found — check tenant_id and the cloud",
    "AADSTS7000112": "app disabled in the customer tenant — re-enable the service principal",
    "AADSTS53003": "sign-in blocked by Conditional Access — exclude the service principal from the policy",
    "AADSTS5000224": "customer tenant deactivated — remove the row from the inventory",
    "PartnerIdInvalid": FIX_BY_STATUS[Status.PARTNER_ID_INVALID],
    # managed_identity_federation: the app's federated credential does not match the managed identity's token
    **dict.fromkeys(
        ("AADSTS700211", "AADSTS700212", "AADSTS7002121", "AADSTS700213"),
        "the app's federated credential does not trust the managed identity — set its issuer, subject and "
        "audience as error_message says (`pal-orchestrator federation-check` prints them)",
    ),
}
_FIX_BY_CODE_LOWER = {k.lower(): v for k, v in FIX_BY_ERROR_CODE.items()}

RECOGNITION_FIX = "assign Support Request Contributor at subscription scope, permanently"
#: The fix for a covered identity whose recognition is not `eligible`.
FIX_BY_RECOGNITION: dict[Recognition, str] = {
    Recognition.NOT_ELIGIBLE: RECOGNITION_FIX,
    Recognition.NO_ROLES: RECOGNITION_FIX,
    Recognition.UNKNOWN: "recognition could not be checked — make sure the identity holds Support Request "
    "Contributor at subscription scope, permanently",
}

#: Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)
_SECRET_NAME = re.compile(r"secret|password|passwd|pwd|token|private.?key|api.?key|credential", re.IGNORECASE)
_SAFE_SECRET_NAME = re.compile(r"(_|\b)(uri|url|name|id|type|expires?(_on)?)$", re.IGNORECASE)
REDACTED = "[redacted]"

_GUID = r"([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})"
_TRACE_ID = re.compile(r"Trace ID:\s*" + _GUID)
_CORRELATION_ID = re.compile(r"Correlation ID:\s*" + _GUID)
_SECRETS_PATH = "/secrets/"

_GREEN = ("#C6EFCE", "#006100")
_AMBER = ("#FFEB9C", "#9C5700")
_RED = ("#FFC7CE", "#9C0006")
_GREY = ("#D9D9D9", "#404040")
#: (fill, font) colours of `covered`/`recognised` cells.
YES_COLOURS, NO_COLOURS = _GREEN, _RED


def iso_utc(value: datetime | None) -> str | None:
    """UTC ISO-8601 with a `Z`, to the second: the one timestamp format of every report."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_safe(value: str) -> str:
    """Neutralise a text cell that a spreadsheet would run as a formula (prefix `'`, per OWASP)."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def scrub(text: str | None) -> str | None:
    """Defence in depth: drop anything shaped like a token or a private key from free text."""
    if not text:
        return text
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "PRIVATE KEY" in text:
        text = _PEM.sub(REDACTED, text)
    return text


def secret_like(column: str) -> bool:
    """An inventory extra column whose name says it holds a secret (values are redacted)."""
    return bool(_SECRET_NAME.search(column)) and not _SAFE_SECRET_NAME.search(column)


def vault_and_secret(secret_uri: str | None) -> tuple[str | None, str | None]:
    """(vault URL, secret name) of a Key Vault secret identifier `https://VAULT/secrets/NAME[/VERSION]`.

    Only the address of the secret: its value never reaches the journal, so it cannot reach a report.
    """
    if not secret_uri or _SECRETS_PATH not in secret_uri:
        return None, None
    vault, _, rest = secret_uri.rpartition(_SECRETS_PATH)
    name = rest.split("/", 1)[0]
    if not name or urlsplit(vault).scheme != "https":
        return None, None
    return vault, name


def entra_ids(message: str | None) -> tuple[str | None, str | None]:
    """(trace ID, correlation ID) quoted in an Entra ID error message, for a support request to Microsoft."""
    if not message or " ID:" not in message:
        return None, None
    trace, correlation = _TRACE_ID.search(message), _CORRELATION_ID.search(message)
    return (trace.group(1) if trace else None), (correlation.group(1) if correlation else None)


#: After `unlink`, these need no one: the link is gone, was never there, or belongs to another partner (left alone).
_NOTHING_TO_DO_AFTER_UNLINK = frozenset({Status.UNLINKED, Status.NOT_LINKED, Status.LINKED_ELSEWHERE})


def linked_after(status: Status | str, linked_partner_id: str | None) -> str | None:
    """The partner ID an identity is linked to after the run: none once `unlinked`, whatever was read before."""
    return None if Status(status) is Status.UNLINKED else linked_partner_id


def fix_for(status: Status | str, error_code: str | None = None, command: str | None = None) -> str:
    """The fix in words for one outcome, or "" when nothing needs doing."""
    status = Status(status)
    if command == Command.UNLINK and status in _NOTHING_TO_DO_AFTER_UNLINK:
        return ""
    if status not in FIX_BY_STATUS:
        return ""
    if error_code:
        code = error_code.strip()
        if code.isdigit():
            code = "AADSTS" + code
        known = _FIX_BY_CODE_LOWER.get(code.lower())
        if known:
            return known
    return FIX_BY_STATUS[status]


def is_covered(status: Status | str, target_partner_id: str, linked_partner_id: str | None) -> bool:
    """Linked to its *target* partner ID after the run (a contradicting linked ID is not covered)."""
    if Status(status) not in COVERED_STATUSES:
        return False
    return linked_partner_id is None or linked_partner_id.strip().lower() == target_partner_id.strip().lower()


def percent(part: int, whole: int) -> float:
    """`part` of `whole` in percent, one decimal; 0.0 of nothing."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def status_colours(status: str) -> tuple[str, str]:
    """(fill, font) colour of a status: green linked, amber not linked yet, red failed, grey skipped."""
    if status in COVERED_STATUSES or status == Status.UNLINKED:
        return _GREEN
    if status == Status.SKIPPED:
        return _GREY
    if status in (Status.NOT_LINKED, Status.WOULD_LINK, Status.WOULD_RELINK, Status.LINKED_ELSEWHERE):
        return _AMBER
    return _RED

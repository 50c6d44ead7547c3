"""The values that flow through a run: inventory rows in, outcomes out.

Everything here is a frozen dataclass or an enum so that the pipeline
(inventory → credentials → linker → journal → report) passes plain values,
never SDK objects or ad-hoc dicts, and nothing downstream can mutate a result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Cloud(StrEnum):
    """Which Azure cloud an identity lives in; `custom` means endpoints given by options."""

    PUBLIC = "public"
    CHINA = "china"
    USGOV = "usgov"
    CUSTOM = "custom"


class CredentialType(StrEnum):
    """How an identity signs in. Secrets and certificates come from Key Vault."""

    SECRET = "secret"  # noqa: S105 - a credential kind, not a password
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed_identity"
    FEDERATED = "federated"
    #: a multi-tenant app signed in with a managed identity's token as its client assertion (no secret anywhere)
    MANAGED_IDENTITY_FEDERATION = "managed_identity_federation"


class Command(StrEnum):
    """The run kinds; each is recorded with the run and shown in the report."""

    LINK = "link"
    PLAN = "plan"
    AUDIT = "audit"
    UNLINK = "unlink"


class Status(StrEnum):
    """One final status per identity per run. The values are part of the report format: never rename."""

    LINKED = "linked"
    ALREADY_LINKED = "already_linked"
    RELINKED = "relinked"
    LINKED_ELSEWHERE = "linked_elsewhere"
    WOULD_LINK = "would_link"
    WOULD_RELINK = "would_relink"
    NOT_LINKED = "not_linked"
    UNLINKED = "unlinked"
    CREDENTIAL_MISSING = "credential_missing"
    CREDENTIAL_FORBIDDEN = "credential_forbidden"
    CREDENTIAL_DISABLED = "credential_disabled"
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_INVALID = "credential_invalid"
    SIGN_IN_FAILED = "sign_in_failed"
    PARTNER_ID_INVALID = "partner_id_invalid"
    FAILED = "failed"
    SKIPPED = "skipped"


#: Statuses that mean the identity is linked to its target partner ID after the run.
COVERED_STATUSES = frozenset({Status.LINKED, Status.ALREADY_LINKED, Status.RELINKED})

#: Statuses that count as success for the exit code, per command.
SUCCESS_STATUSES: dict[Command, frozenset[Status]] = {
    Command.LINK: COVERED_STATUSES,
    Command.PLAN: frozenset({Status.WOULD_LINK, Status.WOULD_RELINK, Status.ALREADY_LINKED}),
    Command.AUDIT: frozenset({Status.ALREADY_LINKED, Status.NOT_LINKED}),
    Command.UNLINK: frozenset({Status.UNLINKED}),
}


class Recognition(StrEnum):
    """Whether a linked identity holds PEC-eligible roles (see pec-roles.csv)."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    NO_ROLES = "no_roles"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Identity:
    """One validated inventory row: a service principal (or other identity) in one customer tenant.

    `secret_uri` is the full Key Vault secret identifier (vault URL + /secrets/NAME[/VERSION]) after
    defaults were applied; it is None for identities that need no Key Vault read.
    """

    customer: str
    tenant_id: str
    client_id: str
    partner_id: str
    cloud: Cloud
    secret_uri: str | None = None
    credential_type: CredentialType | None = None
    token_file: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    source: str = ""
    line: int = 0
    federation_identity: str | None = None  # the managed identity (client ID) a federation row signs in through

    @property
    def key(self) -> str:
        """The identity's stable key: one link per (tenant, principal)."""
        return f"{self.tenant_id.lower()}|{self.client_id.lower()}"

    @property
    def location(self) -> str:
        """`FILE:LINE` of the row, for messages."""
        return f"{self.source}:{self.line}"


def hand_out(identities: list[Identity]) -> Iterator[Identity]:
    """Each identity in order, removed from `identities` as it is handed out.

    A run's fan-out takes its identities this way so that, once one is dispatched, the run no longer holds it:
    100,000 loaded rows are ~70 MB that would otherwise stay to the run's end (docs/performance.md)."""
    identities.reverse()
    while identities:
        yield identities.pop()


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem found in the inventory: `FILE:LINE: column: what is wrong — how to fix`.

    Problems with `row` set make that row `skipped`; `row` keeps what could be read of it for the report.
    """

    source: str
    line: int
    column: str
    message: str
    fix: str = ""
    row: SkippedRow | None = None

    def __str__(self) -> str:
        text = f"{self.source}:{self.line}: {self.column}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """What could be read of an invalid row, so the report can show it as `skipped`."""

    customer: str
    tenant_id: str
    client_id: str
    partner_id: str
    extra: tuple[tuple[str, str], ...] = ()
    source: str = ""
    line: int = 0

    @property
    def key(self) -> str:
        return f"skipped|{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class LinkState:
    """What the ManagementPartner API says the identity is linked to (None fields when not linked)."""

    partner_id: str | None = None
    partner_name: str | None = None
    object_id: str | None = None
    tenant_id: str | None = None
    created_time: datetime | None = None
    updated_time: datetime | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class RoleGrant:
    """One qualifying (or not) role assignment seen for a linked identity."""

    scope: str
    role_definition_id: str
    role_name: str
    eligibility: str  # "yes" | "no" | "unknown"


@dataclass(frozen=True, slots=True)
class RecognitionResult:
    """The recognition check for one identity."""

    recognition: Recognition
    subscriptions: int = 0
    grants: tuple[RoleGrant, ...] = ()
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class SharedCause:
    """A failure whose cause does not depend on the identity (a rejected partner ID, a vault the operator cannot
    read, an endpoint that cannot be reached): when it fails every identity, the run stops (exit 3)."""

    #: partner_id_rejected | refused_unexplained | vault_forbidden | unreachable | token_rejected | not_partner_api
    kind: str
    subject: str  # what it is about: the partner ID, the vault URL, the host or endpoint
    code: str  # the error code the service gave


@dataclass(frozen=True, slots=True)
class Outcome:
    """The final result for one identity in one run: a value, never an exception.

    `message` is one line with no secret in it. `wait_s` records a Retry-After that exceeded the cap.
    """

    key: str
    customer: str
    tenant_id: str
    client_id: str
    target_partner_id: str
    status: Status
    credential_type: str | None = None
    linked_partner_id: str | None = None
    partner_name: str | None = None
    object_id: str | None = None
    created_time: datetime | None = None
    updated_time: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    elapsed_s: float = 0.0
    credential_expires_on: datetime | None = None
    checked_at: datetime | None = None
    wait_s: float | None = None
    recognition: RecognitionResult | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())
    source: str = ""
    line: int = 0
    secret_uri: str | None = None  # where the credential was read (never its value)
    trace_id: str | None = None  # Entra's Trace ID / ARM's x-ms-request-id: what Microsoft support asks for
    correlation_id: str | None = None  # Entra's Correlation ID / ARM's x-ms-correlation-request-id
    shared_cause: SharedCause | None = None  # run control only; not journaled


class LighthouseVerdict(StrEnum):
    """Whether one delegated subscription × Lighthouse offer earns recognition. Values are part of the report format."""

    RECOGNISED = "recognised"  # a permanent PEC-eligible role held by a principal linked to the target partner ID
    MARKETPLACE = "marketplace"  # a Marketplace offer: recognised without PAL
    ELIGIBLE_ONLY = "eligible_only"  # the PEC-eligible role is only just-in-time (counts only while activated)
    PRINCIPAL_NOT_LINKED = "principal_not_linked"  # its principal is known to the journal and not linked (to us)
    PRINCIPAL_UNCHECKED = "principal_unchecked"  # held only by principals we cannot check (outside inventory, groups)
    NO_PEC_ROLE = "no_pec_role"  # only roles that earn nothing (e.g. Reader)
    UNREADABLE = "unreadable"  # the subscription's Lighthouse assignments could not be read


@dataclass(frozen=True, slots=True)
class LighthouseRow:
    """One delegated subscription × offer, judged; one journal row of a `lighthouse` run."""

    customer_tenant_id: str
    subscription_id: str
    offer: str  # the registration definition's name ("" when the assignments could not be read)
    definition_id: str  # the registration definition's GUID ("" when unreadable)
    verdict: LighthouseVerdict
    reason: str
    fix: str
    subscription_name: str = ""
    customer_name: str = ""  # the definition's manageeTenantName, when the service gives it
    principal_ids: tuple[str, ...] = ()  # the principals the verdict is about
    roles: tuple[str, ...] = ()  # "Role name (permanent|just-in-time): principal", every authorization of the offer
    error_code: str | None = None
    checked_at: datetime | None = None


class IdentityFailure(Exception):
    """One identity cannot proceed; the linker turns it into an Outcome (never escapes a run)."""

    def __init__(
        self, status: Status, code: str | None, message: str, *, wait_s: float | None = None,
        cause: SharedCause | None = None,
        ids: tuple[str | None, str | None] = (None, None),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.wait_s = wait_s
        self.cause = cause  # set when the failure does not depend on the identity (see runner's stop rule)
        self.ids = ids  # (trace ID, correlation ID) for Microsoft support

"""One small validator per column, composed in a table (`VALIDATORS`), in the spirit of structlog's processors.

Each validator takes the row's `Cells` and returns the column's clean value or a `Fault` (what is wrong and how
to fix it). They run in the table's order, so a validator may read the clean values of the columns before it:
`client_id` may be empty for a managed identity, a Key Vault location is judged for the row's cloud and
credential type. A column whose validator returned a `Fault` has no value in `Cells.clean`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Final

from ..models import Cloud, CredentialType
from .defaults import Scope
from .schema import (
    CLIENT_ID,
    CLOUD,
    CLOUDS,
    COLUMNS,
    CREDENTIAL_TYPE,
    CREDENTIAL_TYPES,
    CUSTOMER,
    FEDERATION_IDENTITY,
    KEY_VAULT,
    PARTNER_ID,
    PARTNER_ID_FORMAT,
    SECRET_NAME,
    SECRET_URI,
    TENANT_ID,
    TOKEN_FILE,
    Fault,
    squash,
)
from .text import GUID, GUID_EXAMPLE, STRIP, show
from .vaults import NAME_RULE, SECRET_NAME_FORMAT, Vaults

_NIL_GUID = "00000000-0000-0000-0000-000000000000"
_DOMAIN = re.compile(r"(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\t\n\r\x0b\x0c]+")
_CLIENT_ID_FIX = "use the Application (client) ID of the app registration"
_ONLY_FEDERATED = Fault("is only used with credential_type federated", "clear it, or set credential_type to federated")

Clean = str | CredentialType | Cloud | None
_NO_TEXT: Final = dict.fromkeys(COLUMNS, "")
_UNKNOWN: Final = "unknown"


class Cells:
    """One row as the validators see it: trimmed text by column, the defaults in force, the clean values so far."""

    __slots__ = ("_in_vault", "clean", "columns", "raw", "scope", "vaults")

    def __init__(
        self, text: Mapping[str, str], scope: Scope, vaults: Vaults, columns: Collection[str] = COLUMNS
    ) -> None:
        self.columns = columns  # the columns the row's file (or YAML entry) has, even where empty
        #: every column's text, trimmed ("" when empty or absent)
        self.raw = dict(_NO_TEXT)
        self.raw.update({column: value.strip(STRIP) for column, value in text.items() if value})
        self.scope = scope
        self.vaults = vaults
        self.clean: dict[str, Clean] = {}  # a column whose validator found a fault has no clean value
        self._in_vault: bool | str | None = _UNKNOWN

    def text(self, column: str) -> str:
        """The column's clean value as text ("" when it has none or is not text)."""
        value = self.clean.get(column)
        return value if isinstance(value, str) else ""

    @property
    def credential_type(self) -> CredentialType | None:
        value = self.clean.get(CREDENTIAL_TYPE)
        return value if isinstance(value, CredentialType) else None

    @property
    def cloud(self) -> Cloud | None:
        value = self.clean.get(CLOUD)
        return value if isinstance(value, Cloud) else None

    def reads_key_vault(self) -> bool | None:
        """Whether the credential lives in Key Vault (secret, certificate, or not said); None if unknown.

        Asked only after `credential_type` was validated, and several times per row: worked out once.
        """
        if isinstance(self._in_vault, str):
            if CREDENTIAL_TYPE not in self.clean:
                self._in_vault = None  # the credential type is wrong: where its credential lives cannot be judged
            else:
                self._in_vault = self.credential_type in (None, CredentialType.SECRET, CredentialType.CERTIFICATE)
        return self._in_vault

    def by_name(self) -> bool:
        """True when the row locates its secret as key_vault + secret_name (not secret_uri)."""
        return bool(self.raw[SECRET_NAME] and not self.raw[SECRET_URI] and self.reads_key_vault())


# --- identity ----------------------------------------------------------------------------------------------------
def customer(cells: Cells) -> str | Fault:
    """The display name; a quoted name that wraps in a spreadsheet cell becomes one line."""
    name = cells.raw[CUSTOMER]
    if name and _CONTROL.search(name):
        name = " ".join(_LINE_BREAKS.sub(" ", name).split())
    if not name:
        return Fault("is empty", "fill in the customer's display name")
    if _CONTROL.search(name):
        return Fault("contains a control character", "remove it")
    return name


def _guid(text: str) -> str | None:
    """A GUID without braces, lower-cased; None if `text` is no GUID."""
    match = GUID.fullmatch(text)
    return (match.group(1) or match.group(2)).lower() if match else None


def tenant_id(cells: Cells) -> str | Fault:
    """A GUID (braces allowed, not nil) or a verified domain, lower-cased."""
    tenant = cells.raw[TENANT_ID]
    if not tenant:
        return Fault("is empty", "fill in the customer's Directory (tenant) ID (a GUID) or a verified domain")
    guid = _guid(tenant)
    if guid == _NIL_GUID:
        return Fault("is the nil GUID", "use the customer's real Directory (tenant) ID")
    if guid:
        return guid
    if _DOMAIN.fullmatch(tenant.lower()):
        return tenant.lower()
    return Fault(
        f"{show(tenant)} is not a GUID or a domain name",
        f"use the Directory (tenant) ID, e.g. {GUID_EXAMPLE}, or a verified domain such as contoso.onmicrosoft.com",
    )


def credential_type(cells: Cells) -> CredentialType | Fault | None:
    """One of the known credential types (several spellings), or None: decided from the secret later."""
    raw = cells.raw[CREDENTIAL_TYPE]
    if not raw:
        return None
    known = CREDENTIAL_TYPES.get(raw) or CREDENTIAL_TYPES.get(squash(raw))
    if known is None:
        return Fault(
            f"{show(raw)} is not a credential type",
            "use secret, certificate, managed_identity, federated or managed_identity_federation, or leave it empty",
        )
    return known


def client_id(cells: Cells) -> str | Fault:
    """A GUID; empty only for a system-assigned managed identity."""
    client = cells.raw[CLIENT_ID]
    if not client:
        if cells.credential_type is CredentialType.MANAGED_IDENTITY:
            return ""
        return Fault(
            "is empty",
            "fill in the Application (client) ID (empty is allowed only for a system-assigned "
            "managed identity with credential_type managed_identity)",
        )
    guid = _guid(client)
    if guid == _NIL_GUID:
        return Fault("is the nil GUID", _CLIENT_ID_FIX)
    if guid:
        return guid
    return Fault(f"{show(client)} is not a GUID", f"{_CLIENT_ID_FIX}, e.g. {GUID_EXAMPLE}")


# --- where it links, which cloud ---------------------------------------------------------------------------------
def partner_id(cells: Cells) -> str | Fault:
    """6–10 digits, from the row or its defaults (a bad default names where it came from)."""
    raw, origin = cells.raw[PARTNER_ID], ""
    if not raw and cells.scope.partner_id:
        raw, origin = cells.scope.partner_id, f" (from {cells.scope.partner_from})"
    if not raw:
        return Fault(
            "no partner ID for this row",
            "add a partner_id column, a partner_id default in the YAML file, or pass --partner-id ID",
        )
    if PARTNER_ID_FORMAT.fullmatch(raw):
        return raw
    if _DIGITS.fullmatch(raw):
        return Fault(
            f"{show(raw)}{origin} has {len(raw)} digits",
            "a partner (location) ID has 6–10 digits; copy it from Partner Center",
        )
    return Fault(
        f"{show(raw)}{origin} is not a number", "a partner (location) ID is 6–10 digits; copy it from Partner Center"
    )


def cloud(cells: Cells) -> Cloud | Fault:
    """A known cloud (several spellings), from the row or its defaults."""
    raw, origin = cells.raw[CLOUD], ""
    if not raw:
        raw, origin = cells.scope.cloud, f" (from {cells.scope.cloud_from})"
    known = CLOUDS.get(raw) or CLOUDS.get(squash(raw))
    if known is None:
        return Fault(f"{show(raw)}{origin} is not a cloud", "use public, china, usgov or custom")
    return known


# --- where the credential lives ----------------------------------------------------------------------------------
def secret_uri(cells: Cells) -> str | Fault | None:
    """The full secret identifier, if the row gives one; also the checks that the row has exactly one location."""
    uri, name = cells.raw[SECRET_URI], cells.raw[SECRET_NAME]
    in_vault = cells.reads_key_vault()
    if in_vault is None:
        return None
    if not in_vault:
        if uri or name:
            return Fault(
                f"credential_type {cells.credential_type} reads no Key Vault secret",
                "clear secret_uri/secret_name, or set credential_type to secret or certificate",
                column=SECRET_URI if uri else SECRET_NAME,
            )
        return None
    if uri and name:
        return Fault(
            "is given together with secret_uri",
            "keep one: either secret_uri, or key_vault + secret_name",
            column=SECRET_NAME,
        )
    if uri:
        where = cells.cloud
        return cells.vaults.secret_uri(uri, where) if where is not None else None
    if name:
        return None  # key_vault + secret_name: see those two
    return Fault(
        "no credential location",
        "add secret_uri, or secret_name (with key_vault or --key-vault), or set "
        "credential_type to managed_identity, federated or managed_identity_federation",
    )


def secret_name(cells: Cells) -> str | Fault | None:
    """The secret's name in `key_vault`, when the row locates its secret that way."""
    if not cells.by_name():
        return None
    name = cells.raw[SECRET_NAME]
    if not SECRET_NAME_FORMAT.fullmatch(name):
        return Fault(f"{show(name)} is not a Key Vault secret name", NAME_RULE)
    return name


def key_vault(cells: Cells) -> str | Fault | None:
    """The vault URL for `secret_name`, from the row or its defaults (a bad default names where it came from)."""
    if not cells.by_name():
        return None
    raw, origin = cells.raw[KEY_VAULT], ""
    if not raw and cells.scope.key_vault:
        raw, origin = cells.scope.key_vault, f" (from {cells.scope.key_vault_from})"
    if not raw:
        return _no_vault(cells)
    where = cells.cloud
    if where is None:
        return None
    vault = cells.vaults.vault(raw, where)
    return Fault(vault.message + origin, vault.fix) if isinstance(vault, Fault) else vault


def _no_vault(cells: Cells) -> Fault:
    """No vault for secret_name: say whether the file lacks the column or only this row's cell is empty."""
    if KEY_VAULT in cells.columns:
        return Fault(
            "no Key Vault for secret_name: key_vault is empty and no --key-vault was given",
            "fill in key_vault, or pass --key-vault NAME for the rows without one",
        )
    return Fault(
        "no Key Vault for secret_name: no key_vault column and no --key-vault",
        "pass --key-vault NAME, or add a key_vault column (in YAML also a top-level key_vault: default)",
    )


def token_file(cells: Cells) -> str | Fault | None:
    """The federated token's file: only for credential_type federated."""
    path = cells.raw[TOKEN_FILE]
    if not path:
        return None
    in_vault = cells.reads_key_vault()
    if in_vault or (in_vault is False and cells.credential_type is not CredentialType.FEDERATED):
        return _ONLY_FEDERATED
    return path


def federation_identity(cells: Cells) -> str | Fault | None:
    """The managed identity (client ID) a managed_identity_federation row signs in through: the row's own, its
    YAML default, or --federation-identity. Any other row must leave the column empty."""
    raw, origin = cells.raw[FEDERATION_IDENTITY], ""
    kind = cells.credential_type
    if kind is not CredentialType.MANAGED_IDENTITY_FEDERATION:
        if raw and CREDENTIAL_TYPE in cells.clean:
            return Fault("is only used with credential_type managed_identity_federation",
                         "clear it, or set credential_type to managed_identity_federation")
        return None
    if not raw and cells.scope.federation_identity:
        raw, origin = cells.scope.federation_identity, f" (from {cells.scope.federation_from})"
    if not raw:
        return Fault("no managed identity to federate from",
                     "pass --federation-identity CLIENT_ID or fill federation_identity")
    guid = _guid(raw)
    if guid and guid != _NIL_GUID:
        return guid
    return Fault(f"{show(raw)}{origin} is not a managed identity's client ID",
                 f"use the user-assigned managed identity's Client ID (a GUID, e.g. {GUID_EXAMPLE})")


Validator = Callable[[Cells], Clean | Fault]

#: Column → validator, in the order they run (and report): later validators read earlier clean values.
VALIDATORS: Final[Mapping[str, Validator]] = {
    CUSTOMER: customer,
    TENANT_ID: tenant_id,
    CREDENTIAL_TYPE: credential_type,
    CLIENT_ID: client_id,
    PARTNER_ID: partner_id,
    CLOUD: cloud,
    SECRET_URI: secret_uri,
    SECRET_NAME: secret_name,
    KEY_VAULT: key_vault,
    TOKEN_FILE: token_file,
    FEDERATION_IDENTITY: federation_identity,
}


_IN_ORDER: Final = tuple(VALIDATORS.items())


def validate(cells: Cells) -> list[tuple[str, Fault]]:
    """Run every validator; keep the clean values in `cells`, return (column, fault) in table order."""
    faults: list[tuple[str, Fault]] = []
    clean = cells.clean
    for column, check in _IN_ORDER:
        result = check(cells)
        if isinstance(result, Fault):
            faults.append((result.column or column, result))
        else:
            clean[column] = result
    return faults


def secret_location(cells: Cells) -> str | None:
    """The row's secret URI once all columns are valid: given whole, or built from key_vault + secret_name."""
    uri = cells.clean.get(SECRET_URI)
    vault, name = cells.clean.get(KEY_VAULT), cells.clean.get(SECRET_NAME)
    if isinstance(uri, str):
        return uri
    return f"{vault}/secrets/{name}" if isinstance(vault, str) and isinstance(name, str) else None

"""Where an empty `partner_id`, `key_vault`, `cloud` or `federation_identity` cell gets its value, and where
that value came from.

From strongest to weakest: the row, a YAML customer entry (inherited by the reader), the YAML top level, the
command-line options. A bad default is reported on every row that uses it, naming where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..models import Cloud
from .schema import CLOUD, FEDERATION_IDENTITY, KEY_VAULT, PARTNER_ID, PARTNER_ID_FORMAT
from .text import clean, looks_secret, show


@dataclass(frozen=True, slots=True)
class InventoryDefaults:
    """Values the options give to rows that leave a column empty (a YAML file's own defaults win over these)."""

    partner_id: str | None = None
    key_vault: str | None = None
    cloud: Cloud = Cloud.PUBLIC
    sheet: str | None = None
    federation_identity: str | None = None


NO_DEFAULTS: Final = InventoryDefaults()


def check_partner_id_option(value: str | None) -> str | None:
    """Why `--partner-id VALUE` cannot be a partner location ID, or None when it can (or was not given).

    For the CLI to make a malformed flag a usage error before any file is read: as a default it would
    otherwise only skip, one by one, every row that relies on it. Empty counts as not given (a blank
    PAL_PARTNER_ID), surrounding spaces are ignored, as they are for the rows.
    """
    text = clean(value or "")
    if not text or PARTNER_ID_FORMAT.fullmatch(text):
        return None
    plain = len(text) <= 20 and text.isprintable() and not looks_secret(text)
    return f"--partner-id {text if plain else show(text)} is not a partner location ID: use the 6–10 digit PLA ID"


@dataclass(frozen=True, slots=True)
class Scope:
    """Fallback values for one scope (options, YAML top level) and where each came from."""

    partner_id: str | None
    partner_from: str
    key_vault: str | None
    key_vault_from: str
    cloud: str
    cloud_from: str
    federation_identity: str | None = None
    federation_from: str = "--federation-identity"

    @classmethod
    def of_options(cls, defaults: InventoryDefaults) -> Scope:
        """The weakest scope: what the options give, each named by its command-line flag."""
        return cls(
            clean(defaults.partner_id) if defaults.partner_id else None,
            "--partner-id",
            clean(defaults.key_vault) if defaults.key_vault else None,
            "--key-vault",
            str(defaults.cloud),
            "--cloud",
            clean(defaults.federation_identity) if defaults.federation_identity else None,
        )

    def override(self, values: Mapping[str, str], where: Mapping[str, str]) -> Scope:
        """These defaults with the non-empty `values` replacing them; `where` says where each came from."""
        partner = values.get(PARTNER_ID, "")
        vault = values.get(KEY_VAULT, "")
        cloud = values.get(CLOUD, "")
        federation = values.get(FEDERATION_IDENTITY, "")
        return Scope(
            partner or self.partner_id,
            where[PARTNER_ID] if partner else self.partner_from,
            vault or self.key_vault,
            where[KEY_VAULT] if vault else self.key_vault_from,
            cloud or self.cloud,
            where[CLOUD] if cloud else self.cloud_from,
            federation or self.federation_identity,
            where[FEDERATION_IDENTITY] if federation else self.federation_from,
        )

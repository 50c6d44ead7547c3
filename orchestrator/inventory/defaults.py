"""Where an empty `partner_id`, `key_vault` or `cloud` cell gets its value, and where that value came from.

From strongest to weakest: the row, a YAML customer entry (inherited by the reader), the YAML top level, the
command-line options. A bad default is reported on every row that uses it, naming where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..models import Cloud
from .schema import CLOUD, KEY_VAULT, PARTNER_ID
from .text import clean


@dataclass(frozen=True, slots=True)
class InventoryDefaults:
    """Values the options give to rows that leave a column empty (a YAML file's own defaults win over these)."""

    partner_id: str | None = None
    key_vault: str | None = None
    cloud: Cloud = Cloud.PUBLIC
    sheet: str | None = None


NO_DEFAULTS: Final = InventoryDefaults()


@dataclass(frozen=True, slots=True)
class Scope:
    """Fallback values for one scope (options, YAML top level) and where each came from."""

    partner_id: str | None
    partner_from: str
    key_vault: str | None
    key_vault_from: str
    cloud: str
    cloud_from: str

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
        )

    def override(self, values: Mapping[str, str], where: Mapping[str, str]) -> Scope:
        """These defaults with the non-empty `values` replacing them; `where` says where each came from."""
        partner = values.get(PARTNER_ID, "")
        vault = values.get(KEY_VAULT, "")
        cloud = values.get(CLOUD, "")
        return Scope(
            partner or self.partner_id,
            where[PARTNER_ID] if partner else self.partner_from,
            vault or self.key_vault,
            where[KEY_VAULT] if vault else self.key_vault_from,
            cloud or self.cloud,
            where[CLOUD] if cloud else self.cloud_from,
        )

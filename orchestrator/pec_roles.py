"""The PEC-eligible roles shipped in data/pec-roles.csv, and how a role definition ID names its role.

Apart from recognition (which signs in and reads assignments) so that the reports and the Lighthouse roll-up read
the table without importing the Azure SDKs.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

#: The role most partners can ask a customer for: eligible, and least privilege.
SUGGESTED_ROLE = "Support Request Contributor"


@cache
def pec_roles() -> dict[str, tuple[str, str]]:
    """role definition GUID (lower-case) → (role name, "yes"/"no") from the shipped pec-roles.csv."""
    text = resources.files("orchestrator").joinpath("data/pec-roles.csv").read_text(encoding="utf-8")
    rows = (line for line in io.StringIO(text) if not line.startswith("#"))
    table: dict[str, tuple[str, str]] = {}
    for row in csv.DictReader(rows):
        table[row["role_definition_id"].strip().lower()] = (row["role_name"].strip(), row["pec_eligible"].strip())
    return table


def role_guid(role_definition_id: str) -> str:
    """The GUID at the end of a role definition ID (`/subscriptions/…/roleDefinitions/{guid}`)."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()

"""The inventory's vocabulary: column names, the header spellings they accept, and the named values.

Kept apart from the readers and the validators because both speak it: a reader maps a header or a YAML key to a
column here, a validator maps a cell to a credential type or a cloud here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ..models import Cloud, CredentialType

CUSTOMER, TENANT_ID, CLIENT_ID = "customer", "tenant_id", "client_id"
SECRET_URI, KEY_VAULT, SECRET_NAME = "secret_uri", "key_vault", "secret_name"
CREDENTIAL_TYPE, PARTNER_ID, CLOUD, TOKEN_FILE = "credential_type", "partner_id", "cloud", "token_file"
FEDERATION_IDENTITY = "federation_identity"
COLUMNS: Final = (
    CUSTOMER,
    TENANT_ID,
    CLIENT_ID,
    SECRET_URI,
    KEY_VAULT,
    SECRET_NAME,
    CREDENTIAL_TYPE,
    PARTNER_ID,
    CLOUD,
    TOKEN_FILE,
    FEDERATION_IDENTITY,
)
REQUIRED_COLUMNS: Final = (CUSTOMER, TENANT_ID, CLIENT_ID)
#: Known columns kept as written rather than reduced to a checked shape (like every extra column).
TEXT_COLUMNS: Final = (CUSTOMER, TOKEN_FILE)
#: The header a fix suggests when a file has none.
EXAMPLE_HEADER: Final = "customer,tenant_id,client_id,key_vault,secret_name,partner_id"

#: A partner location ID (PLA ID), as Partner Center shows it.
PARTNER_ID_FORMAT: Final = re.compile(r"[0-9]{6,10}")

_SEPARATORS = re.compile(r"[\s_\-.]+")


def squash(name: str) -> str:
    """Header/key normal form: case-insensitive, spaces, hyphens, dots and underscores ignored."""
    return _SEPARATORS.sub("", name.strip().strip("\ufeff\u200b\u200e\u200f").lower())


COLUMN_ALIASES: Final[dict[str, str]] = {
    **{squash(c): c for c in COLUMNS},
    # the labels the Azure portal shows next to the values people copy
    "directory(tenant)id": TENANT_ID,
    "application(client)id": CLIENT_ID,
    "appid": CLIENT_ID,
    "applicationid": CLIENT_ID,
    "keyvaulturl": KEY_VAULT,
    "vault": KEY_VAULT,
    "secretid": SECRET_URI,
}

#: Column names that would put a secret *value* into the inventory (and from there into the report).
SECRET_VALUE_COLUMNS: Final = frozenset(
    {
        "secret",
        "clientsecret",
        "secretvalue",
        "password",
        "passwd",
        "privatekey",
        "pfxpassword",
        "certificatepassword",
        "accesstoken",
        "token",
    }
)

CREDENTIAL_TYPES: Final[dict[str, CredentialType]] = {
    "secret": CredentialType.SECRET,
    "clientsecret": CredentialType.SECRET,
    "certificate": CredentialType.CERTIFICATE,
    "cert": CredentialType.CERTIFICATE,
    "clientcertificate": CredentialType.CERTIFICATE,
    "managedidentity": CredentialType.MANAGED_IDENTITY,
    "msi": CredentialType.MANAGED_IDENTITY,
    "federated": CredentialType.FEDERATED,
    "workloadidentity": CredentialType.FEDERATED,
    # a multi-tenant app that trusts a managed identity: every spelling people reach for
    **dict.fromkeys(
        ("managedidentityfederation", "mifederation", "federatedmanagedidentity", "managedidentityfederated",
         "mifederated", "federatedmi", "federation", "msifederation"),
        CredentialType.MANAGED_IDENTITY_FEDERATION,
    ),
}

CLOUDS: Final[dict[str, Cloud]] = {
    "public": Cloud.PUBLIC,
    "azurecloud": Cloud.PUBLIC,
    "china": Cloud.CHINA,
    "azurechinacloud": Cloud.CHINA,
    "usgov": Cloud.USGOV,
    "azureusgovernment": Cloud.USGOV,
    "custom": Cloud.CUSTOM,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """What is wrong with a value and how to fix it; `column` names another column when the fault is its."""

    message: str
    fix: str
    column: str = ""

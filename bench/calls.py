"""The floor step's requests, each sent two ways over one session: through the SDK stack the run uses, and raw.

The raw way is what aiohttp alone costs for the same request and answer: headers, TLS, the HTTP parser, a JSON
parse of the body. It is the comparison, not an alternative: the run keeps the SDKs (their operations, error
mapping, models and challenge handling). Only the floor step's child process imports this module (the SDKs).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from azure.identity.aio import ClientSecretCredential
from azure.mgmt.managementpartner import __version__ as partner_version
from azure.mgmt.managementpartner.aio import ACEProvisioningManagementPartnerAPI

from orchestrator.credentials import VaultReader, current_token, shared_client_kwargs
from orchestrator.settings import Endpoints
from orchestrator.transport import SharedTransport

from .worlds import OPERATOR, PARTNER_ID, VAULT

#: The Key Vault API version azure-keyvault-secrets 4.12 sends by default.
KEYVAULT_API = "2026-04-01"
ARM_SCOPE = "https://management.azure.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"

Call = Callable[[], Awaitable[object]]


class Calls:
    """The operator's clients as a run builds them, and one coroutine function per (request kind, way)."""

    def __init__(self, transport: SharedTransport, url: str, secret: str, secret_name: str) -> None:
        self._transport = transport
        self._url = url
        self._secret = secret
        self._secret_uri = f"{url}/vaults/{VAULT}/secrets/{secret_name}"
        self._operator = ClientSecretCredential(OPERATOR["tenant"], OPERATOR["client_id"], secret, authority=url,
                                                **transport.client_kwargs())
        endpoints = Endpoints(url, url + "/", ARM_SCOPE.removesuffix(".default"), None)
        self._client = ACEProvisioningManagementPartnerAPI(**shared_client_kwargs(
            transport, endpoints, f"mgmt-managementpartner/{partner_version}"))
        self._vault = VaultReader(self._operator, transport, verify_challenge_resource=False)
        self._arm_token = ""
        self._vault_token = ""
        self._calls: dict[tuple[str, str], Call] = {
            ("token", "sdk"): self._token_sdk, ("token", "raw"): self._token_raw,
            ("secret", "sdk"): self._secret_sdk, ("secret", "raw"): self._secret_raw,
            ("arm_get", "sdk"): self._arm_sdk, ("arm_get", "raw"): self._arm_raw,
        }

    async def prepare(self) -> None:
        """Tokens for the raw requests, the operator's link (so the GET answers 200), one SDK read of the secret
        (Key Vault's challenge is answered once, as a run does before fanning out)."""
        self._arm_token = (await self._operator.get_token(ARM_SCOPE)).token
        self._vault_token = (await self._operator.get_token(VAULT_SCOPE)).token
        current_token.set(self._arm_token)  # the run's per-task token policy reads it; tasks inherit it
        await self._client.partner.create(PARTNER_ID)
        await self._vault.get(self._secret_uri)

    async def close(self) -> None:
        await self._client.close()
        await self._vault.close()  # closes the operator's credential too

    def get(self, kind: str, way: str) -> Call:
        return self._calls[(kind, way)]

    async def served(self) -> int:
        """Requests the emulator has answered so far (its admin endpoint is not counted)."""
        stats = await self._send("GET", f"{self._url}/_emulator/stats", None)
        return int(stats["requests"])

    async def _token_sdk(self) -> object:
        """As a sign-in: a fresh credential with the run's token options, one token, closed."""
        credential = ClientSecretCredential(OPERATOR["tenant"], OPERATOR["client_id"], self._secret,
                                            authority=self._url, **self._transport.token_kwargs())
        async with credential:
            return await credential.get_token(ARM_SCOPE)

    async def _token_raw(self) -> object:
        form = {"client_id": OPERATOR["client_id"], "client_secret": self._secret, "scope": ARM_SCOPE,
                "grant_type": "client_credentials"}
        return await self._send("POST", f"{self._url}/{OPERATOR['tenant']}/oauth2/v2.0/token", None, data=form)

    async def _secret_sdk(self) -> object:
        return await self._vault.get(self._secret_uri)

    async def _secret_raw(self) -> object:
        return await self._send("GET", f"{self._secret_uri}?api-version={KEYVAULT_API}", self._vault_token)

    async def _arm_sdk(self) -> object:
        return await self._client.partner.get(PARTNER_ID)

    async def _arm_raw(self) -> object:
        url = f"{self._url}/providers/Microsoft.ManagementPartner/partners/{PARTNER_ID}?api-version=2018-02-01"
        return await self._send("GET", url, self._arm_token)

    async def _send(self, method: str, url: str, token: str | None, data: dict[str, str] | None = None) -> Any:
        headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        async with self._transport.session.request(method, url, headers=headers, data=data) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {url.split('?')[0]}: HTTP {response.status}")
            return json.loads(body)

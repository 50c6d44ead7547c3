"""`--self`: a one-row inventory for the identity the operator is signed in as (its token's claims).

Apart from the runner so that the runner imports no Azure SDK: a run whose worker processes do the work keeps
its parent free of the SDKs (docs/performance.md); only `--self` signs in here.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ClientAuthenticationError

from .credentials import operator_credential, token_claims
from .errors import OperatorAuthError, UsageError
from .inventory import Inventory
from .models import Identity
from .retrying import CallStats, Retrier
from .run_options import RunOptions, endpoints_resolver
from .transport import SharedTransport


def self_inventory(options: RunOptions, announce: Callable[[str], None]) -> Inventory:
    """A one-row inventory for the signed-in identity (DefaultAzureCredential or --operator-auth)."""
    if not options.partner_id:
        raise UsageError("--self needs --partner-id")
    claims = asyncio.run(_whoami(options))
    tenant_id = str(claims.get("tid") or "")
    object_id = str(claims.get("oid") or "")
    if not tenant_id or not object_id:
        raise OperatorAuthError("the signed-in token carries no tenant or object ID; cannot link it")
    kind = {"app": "service principal", "user": "user"}.get(str(claims.get("idtyp", "")), "")
    if not kind:
        kind = "user" if claims.get("upn") or claims.get("unique_name") else "service principal"
    client_id = str(claims.get("appid") or claims.get("azp") or object_id) if kind != "user" else object_id
    who = claims.get("upn") or claims.get("unique_name") or client_id
    announce(f"signed in as {kind} {who} — tenant {tenant_id}, objectId {object_id}")
    identity = Identity(
        customer=f"self ({kind} {who})", tenant_id=tenant_id, client_id=client_id,
        partner_id=options.partner_id, cloud=options.cloud, source="--self", line=1,
    )
    key = f"self:{tenant_id}/{object_id}"
    return Inventory(path=key, sha256=hashlib.sha256(key.encode()).hexdigest(), identities=(identity,),
                     problems=(), warnings=(), rows=1)


async def _whoami(options: RunOptions) -> dict[str, Any]:
    base = endpoints_resolver(options)(Identity("", "", "", "", options.cloud))
    async with SharedTransport(ca_bundle=options.ca_bundle, limit=4, timeout_s=options.retry.timeout_s) as transport:
        credential = operator_credential(options.operator_auth, endpoints=base, transport=transport)
        try:
            token = await Retrier(options.retry).call(
                lambda: credential.get_token(base.arm_audience + ".default"), CallStats()
            )
        except ClientAuthenticationError as exc:
            raise OperatorAuthError(
                f"cannot sign in as the current identity ({options.operator_auth}): "
                f"{str(exc.message or exc).splitlines()[0]}"
            ) from None
        finally:
            await credential.close()
    return token_claims(token.token)

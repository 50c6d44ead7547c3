"""Is a linked identity earning credit? Classify its role assignments against the PEC-eligible roles.

A link alone earns nothing: Microsoft recognises a partner through the linked identity's *permanent* Azure RBAC
role assignments that are PEC-eligible. Signed in as the identity, we list the subscriptions it can see and its
role assignments in each (`assignedTo('{objectId}')`), and match role definition GUIDs (never names) against
pec-roles.csv. Blind spots, stated in the report: assignments inherited through groups and PIM-eligible roles that
are not active are not visible this way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, HttpResponseError
from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.resource.subscriptions import __version__ as _subscriptions_version
from azure.mgmt.resource.subscriptions.aio import SubscriptionClient

from .credentials import current_token, error_fields, shared_client_kwargs
from .models import Identity, Recognition, RecognitionResult, RoleGrant
from .pec_roles import SUGGESTED_ROLE as SUGGESTED_ROLE
from .pec_roles import pec_roles as pec_roles
from .pec_roles import role_guid as role_guid
from .retrying import CallStats, Retrier, RetryAfterTooLong, classify
from .settings import Endpoints
from .transport import SharedTransport


def classify_grants(grants: list[RoleGrant], subscriptions: int) -> RecognitionResult:
    """eligible ≥ 1 eligible grant; not_eligible only ineligible ones; no_roles none; unknown otherwise."""
    if any(g.eligibility == "yes" for g in grants):
        verdict = Recognition.ELIGIBLE
    elif not grants:
        verdict = Recognition.NO_ROLES
    elif all(g.eligibility == "no" for g in grants):
        verdict = Recognition.NOT_ELIGIBLE
    else:
        verdict = Recognition.UNKNOWN
    return RecognitionResult(verdict, subscriptions, tuple(grants))


def grant_for(scope: str, role_definition_id: str) -> RoleGrant:
    guid = role_guid(role_definition_id)
    name, eligible = pec_roles().get(guid, ("custom or unlisted role", "unknown"))
    return RoleGrant(scope=scope, role_definition_id=guid, role_name=name, eligibility=eligible)


Recognizer = Callable[[Identity, AccessToken, str | None, Endpoints], Awaitable[RecognitionResult]]


def recognizer_factory(transport: SharedTransport, retrier: Retrier) -> Recognizer:
    """A recognizer that reads subscriptions and role assignments as the signed-in identity."""
    subscription_clients: dict[str, SubscriptionClient] = {}

    async def recognize(
        identity: Identity, token: AccessToken, object_id: str | None, endpoints: Endpoints
    ) -> RecognitionResult:
        if not object_id:
            return RecognitionResult(Recognition.UNKNOWN, error_code="NoObjectId")
        current_token.set(token.token)  # the run-wide clients authorize with this task's identity
        subs_client = subscription_clients.get(endpoints.arm_endpoint)
        if subs_client is None:
            subs_client = SubscriptionClient(
                **shared_client_kwargs(transport, endpoints, f"mgmt-resource-subscriptions/{_subscriptions_version}"))
            subscription_clients[endpoints.arm_endpoint] = subs_client
        stats = CallStats()
        try:
            subscription_ids: list[str] = await retrier.call(
                lambda: _collect(subs_client.subscriptions.list(), lambda s: str(s.subscription_id)), stats
            )
            grants: list[RoleGrant] = []
            for sub in subscription_ids:
                kwargs = shared_client_kwargs(transport, endpoints)
                credential = kwargs.pop("credential")
                async with AuthorizationManagementClient(credential, sub, **kwargs) as auth:
                    found: list[RoleGrant] = await retrier.call(
                        lambda auth=auth: _collect(  # type: ignore[misc]
                            auth.role_assignments.list_for_subscription(filter=f"assignedTo('{object_id}')"),
                            lambda a: grant_for(str(a.scope), str(a.role_definition_id)),
                        ),
                        stats,
                    )
                grants.extend(found)
        except RetryAfterTooLong:
            return RecognitionResult(Recognition.UNKNOWN, error_code="RetryAfterTooLong")
        except HttpResponseError as exc:
            code = error_fields(exc)[0] or f"HTTP{exc.status_code}"
            if classify(exc).transient:
                code = f"{code} (retries exhausted)"
            return RecognitionResult(Recognition.UNKNOWN, error_code=code)
        except (AzureError, aiohttp.ClientError, OSError, TimeoutError) as exc:  # cannot read: unknown, run goes on
            return RecognitionResult(Recognition.UNKNOWN, error_code="Timeout" if isinstance(exc, TimeoutError)
                                     else type(exc).__name__)
        return classify_grants(grants, len(subscription_ids))

    return recognize


async def _collect(pager: Any, convert: Callable[[Any], Any]) -> list[Any]:
    return [convert(item) async for item in pager]

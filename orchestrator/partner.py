"""The ManagementPartner API at the edge: every plausible answer read into what it says about the caller's link.

The API's public record is thin (docs/reliability.md, "Wire variants"). "Not linked" has been seen or is plausible
as 404 with `ManagementPartnerNotFound`, the generic `NotFound`, a flat body or no body at all; a creating PUT as
200 or 201; a DELETE as 200 or 204; a deleted link as 404 or as 200 with `state: Deleted`; and `GET …/partners`
(no ID) may not be served. azure-mgmt-managementpartner 1.0.1 accepts only 200 and raises on any other status, so
each call is made through the SDK and its answer is interpreted here:

- only an answer that can be read *positively* is a verdict: a link body with a partner ID, a deleted-state body,
  or a 404 whose code (or empty body) says "not linked". Anything else (an HTML page from a proxy, a 200 without
  `properties`, an unknown code) is a failure of the call, never "not linked";
- a 404/405 naming a routing problem (`InvalidResourceType`, `NoRegisteredProviderFound`, …) on `GET …/partners`
  makes the read fall back on `GET …/partners/{target}`; when that one answers, the list is taken as not served
  for the rest of the run. When both are routed nowhere, the endpoint does not serve the API: a shared cause;
- a write's status code decides nothing: the caller reads the link back (see linker).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from azure.core import AsyncPipelineClient
from azure.core.exceptions import AzureError, DeserializationError, HttpResponseError
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.mgmt.managementpartner.aio import ACEProvisioningManagementPartnerAPI
from azure.mgmt.managementpartner.models import PartnerResponse

from .credentials import one_line, support_ids
from .errors import EndpointError
from .models import IdentityFailure, LinkState, SharedCause, Status
from .retrying import TRANSIENT_STATUS, CallStats, Retrier, classify, network_failure
from .transport import SharedTransport

API_VERSION = "2018-02-01"
#: Codes that positively say "this principal has no link (to this ID)".
NOT_LINKED_CODES = frozenset({"managementpartnernotfound", "notfound", "resourcenotfound"})
#: Codes that say the request never reached a ManagementPartner handler: the endpoint or the route is wrong.
ROUTING_CODES = frozenset({
    "invalidresourcetype", "noregisteredproviderfound", "invalidapiversionparameter",
    "missingapiversionparameter", "invalidresourcenamespace", "methodnotallowed", "resourcetypenotsupported",
})
#: Codes of a PUT refused because the caller is linked already (to another ID).
ALREADY_LINKED_CODES = frozenset({"conflict", "partneridalreadylinked"})

Call = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]
Send = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LinkRead:
    """What a read showed. `whole`: the caller's link whatever its ID (GET …/partners answered); otherwise only
    whether it is linked to the target is known, and a link to another partner ID would be invisible."""

    state: LinkState
    whole: bool = True

    def on(self, partner_id: str) -> bool:
        linked = self.state.partner_id
        return linked is not None and linked.strip().lower() == partner_id.strip().lower()


@dataclass(frozen=True, slots=True)
class Answer:
    """An error answer of the API, read once: status, code (nested or flat body), message, body kind."""

    status: int
    code: str | None
    message: str
    empty: bool
    json: bool

    @property
    def not_linked(self) -> bool:
        if self.status != 404:
            return False
        return self.empty or (self.code or "").lower() in NOT_LINKED_CODES

    @property
    def routing(self) -> bool:
        if self.status == 405:
            return True
        return self.status in (400, 404) and (self.code or "").lower() in ROUTING_CODES

    @property
    def already_linked(self) -> bool:
        return self.status in (400, 409) and (self.code or "").lower() in ALREADY_LINKED_CODES

    @property
    def accepted(self) -> bool:
        """A success status the SDK does not know (201, 202, 204): the write was answered, not refused."""
        return 200 <= self.status < 300


def answer_of(exc: HttpResponseError) -> Answer:
    """Read an SDK error's response without trusting its shape (flat or nested body, HTML, nothing)."""
    text = ""
    try:
        if exc.response is not None:
            text = exc.response.text() or ""
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
        text = ""
    body: Any = None
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = body if isinstance(body, dict) else {}
    code = error.get("code")
    message = error.get("message") or (str(exc.reason or "") if body is None else "")
    if text.strip() and body is None:
        message = f"a non-JSON answer ({_content_type(exc)}) from a proxy or the wrong endpoint"
    status = int(exc.status_code or 0)
    return Answer(status, str(code) if code else None, one_line(str(message)), not text.strip(), body is not None)


def _content_type(exc: HttpResponseError) -> str:
    headers = getattr(exc.response, "headers", None) or {}
    return str(headers.get("Content-Type") or "no content type").split(";")[0]


class PartnerApi:
    """Reads and writes the caller's link through one run-wide SDK client, remembering run-wide facts about the
    service (whether `GET …/partners` is served). One instance per ARM endpoint per run."""

    def __init__(self, client: ACEProvisioningManagementPartnerAPI, endpoint: str) -> None:
        self.client = client
        self.endpoint = endpoint
        self.list_served: bool | None = None  # None: not known yet

    async def read(self, target: str, call: Call) -> LinkRead:
        """The caller's link: GET …/partners, or GET …/partners/{target} where the list is not served."""
        if self.list_served is not False:
            try:
                return LinkRead(self._state(await call(lambda: self.client.partners.get())), whole=True)
            except HttpResponseError as exc:
                if classify(exc).transient:
                    raise
                answer = answer_of(exc)
                if answer.not_linked:
                    return LinkRead(LinkState(), whole=True)
                if answer.json and not answer.routing:
                    raise self._failure(answer, exc) from None
                listed = answer  # not served here (or a proxy's page): ask for the target's link instead
        else:
            listed = None
        read = await self._read_target(target, call, listed)
        if listed is not None and listed.routing:
            self.list_served = False
        return read

    async def _read_target(self, target: str, call: Call, listed: Answer | None) -> LinkRead:
        try:
            response = await call(lambda: self.client.partner.get(target))
        except HttpResponseError as exc:
            answer = answer_of(exc)
            if answer.not_linked:
                return LinkRead(LinkState(), whole=False)
            raise self._failure(answer, exc, listed) from None
        state = self._state(response)
        if state.partner_id is not None and state.partner_id.strip().lower() != target.strip().lower():
            return LinkRead(state, whole=True)  # the service named another ID: that is the whole link
        return LinkRead(state, whole=False)

    async def write(self, op: Callable[[], Awaitable[Any]], send: Send) -> Answer | None:
        """One write through `send` (the retry layer's write, which re-sends only transient failures that did
        not land); returns the refusal, or None when the write was answered with any success status."""
        refusal: Answer | None = None

        async def attempt() -> None:
            nonlocal refusal
            refusal = None
            try:
                await op()
            except HttpResponseError as exc:
                if classify(exc).transient:
                    raise
                answer = answer_of(exc)
                refusal = None if answer.accepted else answer  # 201/204: a success the SDK does not declare
            except DeserializationError:
                refusal = None  # a 2xx whose body the SDK cannot read; the read-back decides

        await send(attempt)
        return refusal

    def _state(self, response: PartnerResponse | None) -> LinkState:
        if response is not None and (response.state or "").lower() == "deleted":
            return LinkState()
        if response is None or not response.partner_id:
            raise IdentityFailure(
                Status.FAILED, "UnreadableAnswer",
                "the service answered 200 without a partner ID in `properties`: the link cannot be read",
            )
        return LinkState(
            partner_id=str(response.partner_id),
            partner_name=response.partner_name,
            object_id=response.object_id,
            tenant_id=response.tenant_id,
            created_time=response.created_time,
            updated_time=response.updated_time,
            version=response.version,
        )

    def _failure(self, answer: Answer, exc: HttpResponseError, listed: Answer | None = None) -> BaseException:
        """A refusal as an outcome-to-be; transient answers go back to the retry layer untouched."""
        if classify(exc).transient:
            return exc
        failure = self._refusal(answer, exc, listed)
        failure.ids = support_ids(exc)
        return failure

    def _refusal(self, answer: Answer, exc: HttpResponseError, listed: Answer | None) -> IdentityFailure:
        code = answer.code or f"HTTP{answer.status}"
        if answer.routing or (listed is not None and not answer.json):
            return IdentityFailure(
                Status.FAILED, code,
                f"{self.endpoint} does not serve Microsoft.ManagementPartner ({answer.message or code})",
                cause=SharedCause("not_partner_api", self.endpoint, code),
            )
        if answer.status == 401:
            return IdentityFailure(Status.FAILED, code, answer.message or "the token was refused",
                                   cause=SharedCause("token_rejected", self.endpoint, code))
        if (answer.code or "").lower() == "partneridinvalid":
            return IdentityFailure(Status.PARTNER_ID_INVALID, code, answer.message)
        if not answer.json or answer.status == 200:
            return IdentityFailure(Status.FAILED, "UnreadableAnswer",
                                   f"HTTP {answer.status}: {answer.message or 'an answer that cannot be read'}")
        return IdentityFailure(Status.FAILED, code, answer.message or f"HTTP {answer.status}")


async def probe_arm(endpoint: str, transport: SharedTransport, retrier: Retrier) -> None:
    """One unauthenticated `GET …/Microsoft.ManagementPartner/operations` before fanning out.

    Azure Resource Manager answers it with 401 and a JSON error (or 200 with `value`); an unreachable host, a TLS
    failure, a proxy's HTML page or a 404 means the endpoint is wrong, and every identity would fail the same way:
    a run-level error before any identity is touched (no token is sent).
    """
    url = endpoint.rstrip("/") + "/providers/Microsoft.ManagementPartner/operations?api-version=" + API_VERSION
    client: AsyncPipelineClient[HttpRequest, AsyncHttpResponse] = AsyncPipelineClient(
        base_url=endpoint, transport=transport.new(), policies=[])

    async def get() -> AsyncHttpResponse:
        response = await client.send_request(HttpRequest("GET", url, headers={"Accept": "application/json"}))
        await response.read()
        if response.status_code in TRANSIENT_STATUS:
            response.raise_for_status()
        return response

    try:
        async with client:  # closes the transport only: the run's shared session stays open
            response = await retrier.call(get, CallStats())
    except (AzureError, OSError, TimeoutError) as exc:
        code = network_failure(exc) or type(exc).__name__
        raise EndpointError(f"cannot reach Azure Resource Manager at {endpoint} ({code}) — check --arm-endpoint "
                            "and --cloud, the network, and --ca-bundle for a private CA") from None
    if not _arm_shaped(response):
        kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        raise EndpointError(f"{endpoint} does not answer as Azure Resource Manager (HTTP {response.status_code}, "
                            f"{kind}, for GET …/Microsoft.ManagementPartner/operations) — check --arm-endpoint "
                            "and --cloud")


def _arm_shaped(response: AsyncHttpResponse) -> bool:
    try:
        body = json.loads(response.text() or "null")
    except ValueError:
        return False
    if response.status_code == 200:
        return isinstance(body, dict) and isinstance(body.get("value"), list)
    if response.status_code in (401, 403):
        error = body.get("error") if isinstance(body, dict) else None
        return (isinstance(error, dict) and bool(error.get("code"))) or bool(
            response.headers.get("WWW-Authenticate", "").lower().startswith("bearer"))
    return False

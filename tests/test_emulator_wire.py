"""Wire variants: each plausible answer of the ManagementPartner API is served as configured, seen on the wire.

Raw HTTPS (trusting the emulator's CA) shows the exact status, headers and body; the real SDK shows how a
variant reaches the engine. Also: world-file `wire:` parsing and validation, `--wire` parsing, live changes.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from emulator_fixtures import OTHER_PARTNER_ID, PARTNER_ID, identity_credential, pal_client
from typer.testing import CliRunner

from orchestrator.cli import app as cli_app
from orchestrator.emulator import (
    WIRE_OPTIONS,
    Emulator,
    IdentityRecord,
    Wire,
    WireError,
    WorldError,
    issue_token_for,
    load_world,
    parse_wire_args,
    serve,
    start_subprocess,
)

TENANT = "c0c0c0c0-0000-4000-8000-00000000000c"
WORLD: dict[str, Any] = {
    "partners": [{"partner_id": PARTNER_ID, "name": "Contoso Partner"},
                 {"partner_id": OTHER_PARTNER_ID, "name": "Fabrikam Partner"}],
    "identities": [{"tenant": TENANT, "secret_name": "sp-wire"}],
}
PARTNERS = "/providers/Microsoft.ManagementPartner/partners"
OPERATIONS = "/providers/Microsoft.ManagementPartner/operations"
NOT_LINKED = "This user or service principal is not linked with a Partner ID"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class Wired:
    """An emulator with one identity, and raw ARM calls as that identity."""

    def __init__(self, em: Emulator) -> None:
        self.em = em
        self.record: IdentityRecord = em.world.identities[0]
        self.token = issue_token_for(em, self.record.tenant_id, self.record.client_id,
                                     "https://management.azure.com/")
        self._ssl = ssl.create_default_context(cafile=em.ca_path)

    def call(self, method: str, path: str, *, auth: bool = True, api_version: str | None = "2018-02-01") -> Answer:
        conn = http.client.HTTPSConnection("127.0.0.1", self.em.port, context=self._ssl, timeout=10)
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        query = f"?api-version={api_version}" if api_version else ""
        try:
            conn.request(method, path + query, headers=headers)
            resp = conn.getresponse()
            return Answer(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def link(self) -> Any:
        return self.em.link(self.record.tenant_id, self.record.object_id)

    def sdk(self) -> Any:
        return pal_client(self.em, identity_credential(self.em, self.record))


@pytest.fixture
def wired() -> Iterator[Callable[..., Wired]]:
    started: list[Emulator] = []

    def make(**wire: Any) -> Wired:
        em = Emulator(WORLD, wire=wire).start()
        started.append(em)
        return Wired(em)

    yield make
    for em in started:
        em.stop()


# --- not linked ------------------------------------------------------------------------------------------

NOT_LINKED_BODIES: dict[str, Any] = {
    "recorded": {"error": {"code": "ManagementPartnerNotFound", "message": NOT_LINKED},
                 "code": "ManagementPartnerNotFound", "message": NOT_LINKED},
    "generic": {"error": {"code": "NotFound", "message": "The requested resource was not found."}},
    "flat": {"code": "ManagementPartnerNotFound", "message": NOT_LINKED},
    "empty": None,
}


@pytest.mark.parametrize("variant", WIRE_OPTIONS["not_linked"])
def test_not_linked_variants_on_every_not_linked_answer(wired: Callable[..., Wired], variant: str) -> None:
    """GET list, GET by ID and PATCH when not linked all answer 404 with the variant's body."""
    w = wired(not_linked=variant)
    for method, path in (("GET", PARTNERS), ("GET", f"{PARTNERS}/{PARTNER_ID}"), ("PATCH", f"{PARTNERS}/{PARTNER_ID}")):
        answer = w.call(method, path)
        assert answer.status == 404, (method, path)
        expected = NOT_LINKED_BODIES[variant]
        if expected is None:
            assert answer.raw == b""
        else:
            assert answer.json == expected


def test_get_of_another_id_than_the_linked_one_is_not_linked_in_the_variant(wired: Callable[..., Wired]) -> None:
    """Linked to X, a GET of Y is the not-linked 404 of the variant (here: flat)."""
    w = wired(not_linked="flat")
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID)
    answer = w.call("GET", f"{PARTNERS}/{OTHER_PARTNER_ID}")
    assert answer.status == 404 and answer.json == NOT_LINKED_BODIES["flat"]


# --- create, put over a link, delete ---------------------------------------------------------------------


def test_create_status_201_creates_and_the_sdk_raises(wired: Callable[..., Wired]) -> None:
    """`create_status: 201`: a creating PUT answers 201 with the link; azure-mgmt-managementpartner raises on it."""
    w = wired(create_status="201")
    answer = w.call("PUT", f"{PARTNERS}/{PARTNER_ID}")
    assert answer.status == 201 and answer.json["properties"]["partnerId"] == PARTNER_ID
    assert w.call("PUT", f"{PARTNERS}/{PARTNER_ID}").status == 200  # not a creation: 200
    w.call("DELETE", f"{PARTNERS}/{PARTNER_ID}")
    with pytest.raises(HttpResponseError) as excinfo:
        w.sdk().partner.create(PARTNER_ID)
    assert excinfo.value.status_code == 201
    assert w.link() is not None and w.link().partner_id == PARTNER_ID


def test_create_status_200_is_the_default(wired: Callable[..., Wired]) -> None:
    """By default a creating PUT answers 200."""
    w = wired()
    assert w.call("PUT", f"{PARTNERS}/{PARTNER_ID}").status == 200


@pytest.mark.parametrize(("variant", "status", "code"), [
    ("conflict", 409, "Conflict"),
    ("already_linked_400", 400, "PartnerIdAlreadyLinked"),
    ("already_linked_409", 409, "PartnerIdAlreadyLinked"),
])
def test_put_over_link_refusals(wired: Callable[..., Wired], variant: str, status: int, code: str) -> None:
    """A PUT for X while linked to Y is refused with the variant's status and code; the link is unchanged."""
    w = wired(put_over_link=variant)
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID, version=5)
    answer = w.call("PUT", f"{PARTNERS}/{OTHER_PARTNER_ID}")
    assert answer.status == status
    assert answer.json["error"]["code"] == answer.json["code"] == code
    if code == "PartnerIdAlreadyLinked":
        assert answer.json["message"] == "This user or service principal is already linked with a Partner ID"
    assert w.link().partner_id == PARTNER_ID and w.link().version == 5
    assert w.em.writes(w.record.tenant_id, w.record.object_id) == 0


def test_put_over_link_switch(wired: Callable[..., Wired]) -> None:
    """`put_over_link: switch`: 200, the link now names X, createdTime kept and version up, like a PATCH."""
    w = wired(put_over_link="switch")
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID, version=5)
    created = w.call("GET", PARTNERS).json["properties"]["createdTime"]
    answer = w.call("PUT", f"{PARTNERS}/{OTHER_PARTNER_ID}")
    assert answer.status == 200
    props = answer.json["properties"]
    assert props["partnerId"] == OTHER_PARTNER_ID and props["version"] == 6 and props["createdTime"] == created
    assert w.em.writes(w.record.tenant_id, w.record.object_id) == 1


@pytest.mark.parametrize("variant", WIRE_OPTIONS["delete_status"])
def test_delete_status_linked_and_not_linked(wired: Callable[..., Wired], variant: str) -> None:
    """DELETE answers the variant's status with an empty body, whether or not something is linked."""
    w = wired(delete_status=variant)
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID)
    for _ in range(2):
        answer = w.call("DELETE", f"{PARTNERS}/{PARTNER_ID}")
        assert answer.status == int(variant) and answer.raw == b""
    assert w.link() is None
    assert w.em.writes(w.record.tenant_id, w.record.object_id) == 2


def test_sdk_delete_raises_on_204_though_the_link_is_gone(wired: Callable[..., Wired]) -> None:
    """azure-mgmt-managementpartner 1.0.1 raises on a 204 DELETE ("No Content") even though it removed the link."""
    w = wired(delete_status="204")
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID)
    with pytest.raises(HttpResponseError) as excinfo:
        w.sdk().partner.delete(PARTNER_ID)
    assert excinfo.value.status_code == 204
    assert w.link() is None


# --- the link's lifecycle --------------------------------------------------------------------------------


def test_delete_bumps_the_version_and_a_recreated_link_keeps_created_time_and_counter(
    wired: Callable[..., Wired],
) -> None:
    """As recorded: PUT 57 → DELETE (58) → PUT 59, createdTime kept; after the DELETE the link is gone."""
    w = wired()
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID, version=56)
    first = w.call("PUT", f"{PARTNERS}/{PARTNER_ID}").json
    assert first["properties"]["version"] == first["etag"] == 57
    assert w.call("DELETE", f"{PARTNERS}/{PARTNER_ID}").status == 200
    assert w.call("GET", PARTNERS).status == 404
    assert w.call("GET", f"{PARTNERS}/{PARTNER_ID}").status == 404
    again = w.call("PUT", f"{PARTNERS}/{OTHER_PARTNER_ID}").json
    assert again["properties"]["version"] == again["etag"] == 59
    assert again["properties"]["createdTime"] == first["properties"]["createdTime"]
    assert again["properties"]["state"] == "Active"
    assert w.em.writes(w.record.tenant_id, w.record.object_id) == 3


def test_after_delete_deleted_state(wired: Callable[..., Wired]) -> None:
    """`after_delete: deleted_state`: GETs of the deleted ID answer 200 state Deleted until a new PUT."""
    w = wired(after_delete="deleted_state")
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID, version=57)
    w.call("DELETE", f"{PARTNERS}/{PARTNER_ID}")
    for path in (PARTNERS, f"{PARTNERS}/{PARTNER_ID}"):
        answer = w.call("GET", path)
        assert answer.status == 200
        props = answer.json["properties"]
        assert props["state"] == "Deleted" and props["partnerId"] == PARTNER_ID and props["version"] == 58
    assert w.call("GET", f"{PARTNERS}/{OTHER_PARTNER_ID}").status == 404
    assert w.call("PATCH", f"{PARTNERS}/{OTHER_PARTNER_ID}").status == 404  # deleted is not linked
    assert w.sdk().partners.get().state == "Deleted"
    assert w.link() is None
    put = w.call("PUT", f"{PARTNERS}/{PARTNER_ID}")
    assert put.json["properties"]["state"] == "Active" and put.json["properties"]["version"] == 59
    assert w.call("GET", PARTNERS).json["properties"]["state"] == "Active"


# --- body shape ------------------------------------------------------------------------------------------


def test_version_type_string(wired: Callable[..., Wired]) -> None:
    """`version_type: string`: etag and properties.version are JSON strings; the SDK still reads the link."""
    w = wired(version_type="string")
    answer = w.call("PUT", f"{PARTNERS}/{PARTNER_ID}")
    assert answer.json["etag"] == "1" and answer.json["properties"]["version"] == "1"
    assert b'"version": "1"' in answer.raw
    assert w.sdk().partners.get().partner_id == PARTNER_ID


def test_partner_name_absent(wired: Callable[..., Wired]) -> None:
    """`partner_name: absent`: no partnerName key, on writes and reads."""
    w = wired(partner_name="absent")
    assert "partnerName" not in w.call("PUT", f"{PARTNERS}/{PARTNER_ID}").json["properties"]
    assert "partnerName" not in w.call("GET", PARTNERS).json["properties"]
    assert w.sdk().partners.get().partner_name is None


def test_read_body_no_properties(wired: Callable[..., Wired]) -> None:
    """`read_body: no_properties`: GETs of an existing link answer only id, name, type; writes stay full."""
    w = wired(read_body="no_properties")
    assert "properties" in w.call("PUT", f"{PARTNERS}/{PARTNER_ID}").json
    for path in (PARTNERS, f"{PARTNERS}/{PARTNER_ID}"):
        answer = w.call("GET", path)
        assert answer.status == 200
        assert answer.json == {"id": f"/providers/microsoft.managementpartner/partners/{PARTNER_ID}",
                               "name": PARTNER_ID, "type": "Microsoft.ManagementPartner/partners"}
    read = w.sdk().partner.get(PARTNER_ID)
    assert read.partner_id is None and read.name == PARTNER_ID


# --- routes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "status", "code"), [("404", 404, "InvalidResourceType"),
                                                         ("405", 405, "MethodNotAllowed")])
def test_list_get_gone(wired: Callable[..., Wired], variant: str, status: int, code: str) -> None:
    """`list_get: 404|405`: GET …/partners without an ID fails so even when linked; by ID still works."""
    w = wired(list_get=variant)
    w.em.world.set_link(w.record.tenant_id, w.record.object_id, PARTNER_ID)
    answer = w.call("GET", PARTNERS)
    assert answer.status == status and answer.json["error"]["code"] == code
    if variant == "404":
        assert answer.json["error"]["message"].startswith("The resource type could not be found")
    assert w.call("GET", f"{PARTNERS}/{PARTNER_ID}").status == 200


@pytest.mark.parametrize(("variant", "code"), [("invalid_resource_type", "InvalidResourceType"),
                                               ("no_registered_provider", "NoRegisteredProviderFound")])
def test_partners_route_arm_json(wired: Callable[..., Wired], variant: str, code: str) -> None:
    """Every …/partners call answers 404 with the ARM code; nothing is written; no token is still 401."""
    w = wired(partners_route=variant)
    for method, path in (("GET", PARTNERS), ("GET", f"{PARTNERS}/{PARTNER_ID}"), ("PUT", f"{PARTNERS}/{PARTNER_ID}"),
                         ("PATCH", f"{PARTNERS}/{PARTNER_ID}"), ("DELETE", f"{PARTNERS}/{PARTNER_ID}")):
        answer = w.call(method, path)
        assert answer.status == 404 and answer.json["error"]["code"] == code, (method, path)
    assert w.link() is None and w.em.writes(w.record.tenant_id, w.record.object_id) == 0
    assert w.call("GET", PARTNERS, auth=False).status == 401


def test_partners_route_html(wired: Callable[..., Wired]) -> None:
    """`partners_route: html`: a proxy's 404 text/html page, with or without a token; the SDK raises."""
    w = wired(partners_route="html")
    for auth in (True, False):
        for method, path in (("GET", PARTNERS), ("PUT", f"{PARTNERS}/{PARTNER_ID}")):
            answer = w.call(method, path, auth=auth)
            assert answer.status == 404
            assert answer.headers["Content-Type"].startswith("text/html")
            assert answer.raw.startswith(b"<!DOCTYPE html>")
    with pytest.raises(HttpResponseError) as excinfo:
        w.sdk().partner.get(PARTNER_ID)
    assert excinfo.value.status_code == 404
    assert w.link() is None


def test_operations_without_token_is_arm_401(wired: Callable[..., Wired]) -> None:
    """`operations: ok`: an unauthenticated probe gets ARM's 401 InvalidAuthenticationToken + WWW-Authenticate."""
    w = wired()
    answer = w.call("GET", OPERATIONS, auth=False)
    assert answer.status == 401 and answer.json["error"]["code"] == "InvalidAuthenticationToken"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    authed = w.call("GET", OPERATIONS)
    assert authed.status == 200 and authed.json["value"]


@pytest.mark.parametrize(("variant", "status"), [("html", 200), ("404", 404)])
def test_operations_html(wired: Callable[..., Wired], variant: str, status: int) -> None:
    """`operations: html|404`: a proxy page (text/html) wins, with or without a token."""
    w = wired(operations=variant)
    for auth in (True, False):
        answer = w.call("GET", OPERATIONS, auth=auth)
        assert answer.status == status
        assert answer.headers["Content-Type"].startswith("text/html")
        assert b"<html>" in answer.raw


# --- setting the variants --------------------------------------------------------------------------------


def test_defaults_are_todays_behaviour() -> None:
    """The first value of every name is the default, and Wire's fields are exactly the names."""
    assert Wire().as_dict() == {name: values[0] for name, values in WIRE_OPTIONS.items()}


def test_set_wire_live_and_reset(wired: Callable[..., Wired]) -> None:
    """`set_wire` changes a running emulator at once, keeps other names, and refuses unknown names/values."""
    w = wired(create_status=201)
    assert w.em.wire.create_status == "201"
    w.em.set_wire(not_linked="empty")
    assert w.call("GET", PARTNERS).raw == b""
    assert w.em.wire.create_status == "201"
    with pytest.raises(WireError, match="unknown wire name 'nope'"):
        w.em.set_wire(nope="x")
    with pytest.raises(WireError, match=r"not_linked: 'loud' is not one of: recorded, generic, flat, empty"):
        w.em.set_wire(not_linked="loud")
    assert w.em.reset_wire() == Wire()
    assert w.call("GET", PARTNERS).json["code"] == "ManagementPartnerNotFound"


def test_admin_endpoint_changes_wire(wired: Callable[..., Wired]) -> None:
    """POST /_emulator/wire merges variants; a bad one is 400 BadWire and changes nothing."""
    w = wired()
    conn = http.client.HTTPSConnection("127.0.0.1", w.em.port, context=ssl.create_default_context(cafile=w.em.ca_path))
    conn.request("POST", "/_emulator/wire", body=json.dumps({"list_get": "405"}))
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["list_get"] == "405"
    conn.request("POST", "/_emulator/wire", body=json.dumps({"list_get": "418"}))
    resp = conn.getresponse()
    assert resp.status == 400 and json.loads(resp.read())["error"]["code"] == "BadWire"
    conn.close()
    assert w.em.wire.list_get == "405"


def test_emulator_kwarg_wins_over_world_file() -> None:
    """`Emulator(world, wire=…)` is applied over the world's `wire:`."""
    world = {**WORLD, "wire": {"not_linked": "flat", "delete_status": 204}}
    em = Emulator(world, wire={"not_linked": "generic"})
    assert em.wire.not_linked == "generic" and em.wire.delete_status == "204"
    with pytest.raises(WireError):
        Emulator(WORLD, wire={"delete_status": "202"})


def test_world_file_wire_section(tmp_path: Path) -> None:
    """A world file's `wire:` is read (YAML ints as strings) and served."""
    path = tmp_path / "world.yaml"
    path.write_text(f"identities: [{{tenant: {TENANT}}}]\nwire:\n  create_status: 201\n  version_type: string\n")
    world = load_world(path)
    assert world.wire == {"create_status": "201", "version_type": "string"}
    with Emulator(world) as em:
        assert em.wire.create_status == "201" and em.wire.version_type == "string"
        assert Wired(em).call("PUT", f"{PARTNERS}/{PARTNER_ID}").status == 201


@pytest.mark.parametrize(("wire", "message"), [
    ("wire: {not_linked: loud}", r"world.yaml: wire.not_linked: 'loud' is not one of: recorded, generic, flat"),
    ("wire: {bogus: 1}", r"world.yaml: wire: unknown wire name 'bogus'; known: not_linked, create_status"),
    ("wire: [not_linked]", r"world.yaml: wire must be a mapping"),
    ("wire: {create_status: 202}", r"wire.create_status: 202 is not one of: 200, 201"),
])
def test_world_file_wire_errors(tmp_path: Path, wire: str, message: str) -> None:
    """Unknown names, unknown values and a non-mapping are WorldErrors naming the file, name and choices."""
    path = tmp_path / "world.yaml"
    path.write_text(wire + "\n")
    with pytest.raises(WorldError, match=message):
        load_world(path)


def test_parse_wire_args() -> None:
    """`--wire NAME=VALUE` pairs parse, are checked, and a missing `=` is explained."""
    assert parse_wire_args(["not_linked=flat", " create_status = 201 "]) == {"not_linked": "flat",
                                                                             "create_status": "201"}
    assert parse_wire_args(None) == {}
    with pytest.raises(WireError, match=r"--wire 'not_linked': use NAME=VALUE"):
        parse_wire_args(["not_linked"])
    with pytest.raises(WireError, match=r"--wire.list_get: '406' is not one of: served, 404, 405"):
        parse_wire_args(["list_get=406"])


def test_module_and_cli_refuse_a_bad_wire(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m orchestrator.emulator --wire …` and `pal-orchestrator emulator --wire …` exit 2 with the reason."""
    assert serve(["--wire", "after_delete=soon"]) == 2
    assert "after_delete: 'soon' is not one of: gone, deleted_state" in capsys.readouterr().err
    result = CliRunner().invoke(cli_app, ["emulator", "--wire", "operations"])
    assert result.exit_code == 2
    assert "use NAME=VALUE" in result.output


def test_subprocess_with_wire_options(tmp_path: Path) -> None:
    """`--wire` on the emulator process is served; EmulatorProcess.set_wire changes it live."""
    with start_subprocess(wire={"operations": "html", "list_get": "405"}) as proc:
        ctx = ssl.create_default_context(cafile=proc.ca_path)
        port = int(proc.url.rsplit(":", 1)[1])

        def get(path: str) -> int:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            return status

        assert get(OPERATIONS + "?api-version=2018-02-01") == 200
        assert proc.set_wire(operations="ok")["list_get"] == "405"
        assert get(OPERATIONS + "?api-version=2018-02-01") == 401

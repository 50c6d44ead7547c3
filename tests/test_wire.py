"""One reconcile under every plausible answer of the ManagementPartner API (issue 12).

Each scenario is a set of emulator wire variants (docs/reliability.md, "Wire variants"). Under each, with the real
SDKs over HTTPS: link → re-run (no link written) → audit → plan → unlink → link again, over three identities —
A not linked, B linked to the target, C linked to another partner — and the outcomes must be the same as under the
recorded service. The one thing no client can see is a link to another partner ID when `GET …/partners` is not
served (`list_get` 404/405): there C's audit/plan/unlink outcomes say so instead (documented blind spot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_reliability_faults import PARTNER, make_world, never_sleep, operator_env, options, outcomes, write_rows

from orchestrator.emulator import Emulator, World
from orchestrator.errors import EndpointError
from orchestrator.models import Command, Status
from orchestrator.runner import STOPPED_EXIT_CODE, execute

OTHER = "7654321"

#: Every value of every name once, then combinations an Azure-compatible endpoint may well serve together.
SCENARIOS: list[dict[str, str]] = [
    {},
    {"not_linked": "generic"}, {"not_linked": "flat"}, {"not_linked": "empty"},
    {"create_status": "201"},
    {"put_over_link": "already_linked_400"}, {"put_over_link": "already_linked_409"}, {"put_over_link": "switch"},
    {"delete_status": "204"},
    {"after_delete": "deleted_state"},
    {"version_type": "string"},
    {"partner_name": "absent"},
    {"list_get": "404"}, {"list_get": "405"},
    {"not_linked": "empty", "create_status": "201", "delete_status": "204", "after_delete": "deleted_state",
     "version_type": "string", "partner_name": "absent"},
    {"list_get": "404", "not_linked": "generic", "put_over_link": "already_linked_400", "create_status": "201"},
    {"list_get": "405", "not_linked": "flat", "put_over_link": "already_linked_409", "delete_status": "204",
     "after_delete": "deleted_state", "version_type": "string"},
    {"not_linked": "generic", "put_over_link": "switch", "create_status": "201", "after_delete": "deleted_state"},
]


def _name(wire: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in wire.items()) or "recorded"


@dataclass
class World3:
    em: Emulator
    inventory: Path
    tmp: Path
    names: dict[str, str]  # client_id → A/B/C

    def run(self, command: Command, **kwargs: Any) -> dict[str, Status]:
        result = execute(options(self.em, self.inventory, self.tmp, command=command, **kwargs), sleep=never_sleep())
        return {self.names[o.client_id]: o.status for o in outcomes(result)}

    def linked_to(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for record in self.em.world.identities:
            link = self.em.link(record.tenant_id, record.object_id)
            out[self.names[record.client_id]] = link.partner_id if link else None
        return out

    def link_writes(self) -> int:
        return sum(self.em.writes(r.tenant_id, r.object_id) for r in self.em.world.identities)


def _world3(emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wire: dict[str, str],
            n_extra: int = 0) -> World3:
    world: World = make_world(3 + n_extra)
    world.add_partner(OTHER, "Fabrikam Partner")
    a, b, c = world.identities[:3]
    world.set_link(b.tenant_id, b.object_id, PARTNER)
    world.set_link(c.tenant_id, c.object_id, OTHER)
    em = emulator_factory(world, wire=wire)
    operator_env(em, monkeypatch)
    names = {a.client_id: "A", b.client_id: "B", c.client_id: "C"}
    names.update({r.client_id: f"X{i}" for i, r in enumerate(world.identities[3:])})
    inv = write_rows(tmp_path / "inv.csv", em, world.identities)
    return World3(em, inv, tmp_path, names)


@pytest.mark.parametrize("wire", SCENARIOS, ids=_name)
def test_the_same_outcomes_under_every_plausible_answer(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wire: dict[str, str]
) -> None:
    """link → re-run → audit → plan → unlink → link again: outcomes as under the recorded service, C's link to
    another partner is never touched, and a re-run writes no link."""
    w = _world3(emulator_factory, tmp_path, monkeypatch, wire)
    blind = wire.get("list_get") in ("404", "405")
    L, AL, LE = Status.LINKED, Status.ALREADY_LINKED, Status.LINKED_ELSEWHERE

    assert w.run(Command.LINK) == {"A": L, "B": AL, "C": LE}
    assert w.linked_to() == {"A": PARTNER, "B": PARTNER, "C": OTHER}
    writes = w.link_writes()
    assert w.run(Command.LINK) == {"A": AL, "B": AL, "C": LE}
    assert w.link_writes() == writes, "a re-run writes no link"

    assert w.run(Command.AUDIT) == {"A": AL, "B": AL, "C": Status.NOT_LINKED if blind else LE}
    assert w.run(Command.PLAN) == {"A": AL, "B": AL, "C": Status.WOULD_LINK if blind else LE}
    assert w.run(Command.UNLINK) == {"A": Status.UNLINKED, "B": Status.UNLINKED,
                                     "C": Status.UNLINKED if blind else LE}
    assert w.linked_to() == {"A": None, "B": None, "C": OTHER}
    assert w.run(Command.AUDIT) == {"A": Status.NOT_LINKED, "B": Status.NOT_LINKED,
                                    "C": Status.NOT_LINKED if blind else LE}

    assert w.run(Command.LINK) == {"A": L, "B": L, "C": LE}
    assert w.linked_to() == {"A": PARTNER, "B": PARTNER, "C": OTHER}


def test_overwrite_switches_a_link_the_service_will_not_show(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET …/partners not served: C's other link is invisible, its PUT is refused; --overwrite then PATCHes it."""
    w = _world3(emulator_factory, tmp_path, monkeypatch, {"list_get": "404", "put_over_link": "already_linked_409"})
    assert w.run(Command.LINK, overwrite=True) == {"A": Status.LINKED, "B": Status.ALREADY_LINKED,
                                                   "C": Status.RELINKED}
    assert w.linked_to()["C"] == PARTNER


def test_an_answer_that_cannot_be_read_is_never_a_verdict(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 200 without `properties`: audit does not say not_linked, unlink does not say unlinked; the links stay."""
    w = _world3(emulator_factory, tmp_path, monkeypatch, {"read_body": "no_properties"})
    audit = w.run(Command.AUDIT)
    assert audit["B"] is Status.FAILED and audit["C"] is Status.FAILED
    unlink = w.run(Command.UNLINK)
    assert unlink["B"] is Status.FAILED
    assert w.linked_to()["B"] == PARTNER and w.linked_to()["C"] == OTHER


@pytest.mark.parametrize("route", ["invalid_resource_type", "no_registered_provider", "html"])
def test_a_route_that_does_not_serve_the_api_is_a_shared_cause_not_not_linked(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """Every …/partners call answers a routing 404 (or a proxy's HTML): nobody is `not_linked`; the run stops
    with exit 3 naming the endpoint, after a handful of identities."""
    w = _world3(emulator_factory, tmp_path, monkeypatch, {"partners_route": route}, n_extra=30)
    result = execute(options(w.em, w.inventory, w.tmp, command=Command.AUDIT), sleep=never_sleep())
    assert result.exit_code == STOPPED_EXIT_CODE
    assert result.stop is not None and "does not serve Microsoft.ManagementPartner" in result.stop
    statuses = {o.status for o in outcomes(result)}
    assert statuses == {Status.FAILED}
    assert len(outcomes(result)) <= 20


@pytest.mark.parametrize("operations", ["html", "404"])
def test_a_proxy_in_front_of_arm_stops_the_run_before_any_identity(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operations: str
) -> None:
    """The pre-flight probe of …/operations gets a page that is not ARM: exit 2 before any sign-in."""
    w = _world3(emulator_factory, tmp_path, monkeypatch, {"operations": operations})
    with pytest.raises(EndpointError, match="does not answer as Azure Resource Manager"):
        execute(options(w.em, w.inventory, w.tmp), sleep=never_sleep())
    assert not [q for q in w.em.requests if q.service in ("entra", "keyvault")]


def test_resume_under_a_201_and_no_list_counts_the_write_announced_before_the_crash(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the PUT (answered 201) but before its outcome was recorded: --resume reads the link back and
    reports it `linked` (the run's own write), without writing it again."""
    import sqlite3

    w = _world3(emulator_factory, tmp_path, monkeypatch, {"create_status": "201", "list_get": "404"})
    first = execute(options(w.em, w.inventory, w.tmp), sleep=never_sleep())
    a_key = next(o.key for o in outcomes(first) if w.names[o.client_id] == "A")
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    db.execute("DELETE FROM outcomes WHERE key=?", (a_key,))
    db.execute("UPDATE runs SET finished_at=NULL, exit_code=NULL")
    db.commit()
    db.close()
    writes = w.link_writes()
    resumed = execute(options(w.em, w.inventory, w.tmp, resume=True), sleep=never_sleep())
    assert {w.names[o.client_id]: o.status for o in outcomes(resumed)}["A"] is Status.LINKED
    assert w.link_writes() == writes


@pytest.mark.slow
@pytest.mark.parametrize("wire", SCENARIOS, ids=_name)
def test_the_matrix_on_a_larger_world(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wire: dict[str, str]
) -> None:
    """`make test-all`: the same link → re-run → unlink → link cycle with 200 more unlinked identities."""
    w = _world3(emulator_factory, tmp_path, monkeypatch, wire, n_extra=200)
    first = w.run(Command.LINK)
    assert sum(1 for s in first.values() if s is Status.LINKED) == 201
    writes = w.link_writes()
    second = w.run(Command.LINK)
    assert w.link_writes() == writes and second["C"] is Status.LINKED_ELSEWHERE
    unlinked = w.run(Command.UNLINK)
    assert sum(1 for s in unlinked.values() if s is Status.UNLINKED) >= 202
    again = w.run(Command.LINK)
    assert sum(1 for s in again.values() if s is Status.LINKED) == 202 and w.linked_to()["C"] == OTHER

"""The pipe between the parent and a worker: every message that crosses it once per identity arrives equal, field for
field, in the order sent — the classes are pickled by their field values (workers/wire.py), so a field left out or
taken in the wrong order would show here, not as a wrong row in a report."""

from __future__ import annotations

import asyncio
import pickletools
import socket
from dataclasses import fields
from datetime import UTC, datetime, timedelta

from orchestrator.models import (
    Cloud,
    CredentialType,
    Identity,
    Outcome,
    Recognition,
    RecognitionResult,
    RoleGrant,
    SharedCause,
    Status,
)
from orchestrator.workers import wire
from orchestrator.workers.wire import Channel, Done, Failure, Ready, Reply, Request, Start

_T0 = datetime(2026, 11, 29, 0, 30, 5, 123456, tzinfo=UTC)


def _identity() -> Identity:
    return Identity("Contoso =1", "t" * 36, "c" * 36, "1234567", Cloud.CUSTOM, "https://v.example/secrets/s/1",
                    CredentialType.CERTIFICATE, "/run/token", (("region", "emea"), ("tier", "gold")), "inv.csv", 7,
                    "mi-client-id")


def _outcome() -> Outcome:
    grant = RoleGrant("/subscriptions/s1", "/providers/rd/1", "Contributor", "yes")
    recognition = RecognitionResult(Recognition.ELIGIBLE, 3, (grant, grant), "Partial")
    return Outcome(
        "k|x", "Contoso", "t" * 36, "c" * 36, "1234567", Status.LINKED_ELSEWHERE, "certificate", "7654321", "Other Ltd",
        "oid-1", _T0, _T0 + timedelta(seconds=1), "E1", "one line", 3, 1.25, _T0 + timedelta(days=90),
        _T0 + timedelta(seconds=2), 42.0, recognition, (("region", "emea"),), "inv.csv", 7,
        "https://v.example/secrets/s/1", "trace-1", "corr-1", SharedCause("unreachable", "host", "E2"))


def _every_field_set(value: object) -> bool:
    return all(getattr(value, f.name) not in (None, "", (), 0) for f in fields(value))  # type: ignore[arg-type]


async def _round_trip(messages: list[object]) -> list[object]:
    left, right = socket.socketpair()
    sender, receiver = await Channel.over(left), await Channel.over(right)
    for message in messages:
        sender.send(message)
    received = [await receiver.receive() for _ in messages]
    sender.close()
    receiver.close()
    return received


def test_every_per_identity_message_crosses_the_pipe_equal_field_for_field() -> None:
    identity, outcome = _identity(), _outcome()
    assert _every_field_set(identity) and _every_field_set(outcome)  # a default would hide a dropped field
    messages: list[object] = [
        Start(1, identity),
        Request(3, "intent", (identity.key, "create", "1234567")),
        Reply(3),
        Reply(4, ("obj", "k|y")),
        Reply(5, error=Failure("refused", Status.FAILED, "Forbidden", SharedCause("vault_forbidden", "v", "403"))),
        Ready(),
        Done(1, outcome),
    ]

    received = asyncio.run(_round_trip(messages))

    assert received == messages
    assert [type(m) for m in received] == [type(m) for m in messages]
    done = received[-1]
    assert isinstance(done, Done) and done.outcome.created_time == _T0 and done.outcome.created_time.tzinfo == UTC


def test_the_per_identity_messages_are_pickled_as_calls_with_their_field_values_not_as_slot_state() -> None:
    """No BUILD opcode (the state dataclasses would set field by field, after fields() on every object) in the
    pickle of a Start or a Done: the cheaper form is the one in use."""
    for message in (Start(1, _identity()), Done(1, _outcome())):
        opcodes = {op.name for op, _, _ in pickletools.genops(wire._dumps(message))}
        assert "BUILD" not in opcodes and "REDUCE" in opcodes, opcodes

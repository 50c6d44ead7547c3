"""Wire variants: every plausible answer of the thinly documented ManagementPartner API, one switch each.

The real service's answers are recorded only in part (see /work/shared/context/azure-facts.md): the code of a
"not linked" 404, the status of a PUT over another link, 201/204 from the current spec, a link's state after a
DELETE. The engine must not depend on any single reading, so the emulator can serve each of them. The first
value of every name is the default (the recorded behaviour). Set them in the world file (`wire:`), with
`Emulator(wire={...})`, live with `Emulator.set_wire(name=value)` or `POST /_emulator/wire`, or with
`--wire NAME=VALUE` on the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

#: Each wire name and its values; the first value is the default.
WIRE_OPTIONS: dict[str, tuple[str, ...]] = {
    "not_linked": ("recorded", "generic", "flat", "empty"),
    "create_status": ("200", "201"),
    "put_over_link": ("conflict", "already_linked_400", "already_linked_409", "switch"),
    "delete_status": ("200", "204"),
    "after_delete": ("gone", "deleted_state"),
    "version_type": ("int", "string"),
    "partner_name": ("present", "absent"),
    "list_get": ("served", "404", "405"),
    "partners_route": ("ok", "invalid_resource_type", "no_registered_provider", "html"),
    "operations": ("ok", "html", "404"),
    "read_body": ("full", "no_properties"),
}


class WireError(ValueError):
    """An unknown wire name or value; the message lists what is accepted."""


@dataclass(frozen=True, slots=True)
class Wire:
    """The wire variants one emulator serves (see WIRE_OPTIONS and README.md)."""

    not_linked: str = "recorded"
    create_status: str = "200"
    put_over_link: str = "conflict"
    delete_status: str = "200"
    after_delete: str = "gone"
    version_type: str = "int"
    partner_name: str = "present"
    list_get: str = "served"
    partners_route: str = "ok"
    operations: str = "ok"
    read_body: str = "full"

    def updated(self, changes: Mapping[str, Any] | None, *, where: str = "wire") -> Wire:
        """A copy with `changes` applied, each name and value checked."""
        return replace(self, **check_wire(changes, where=where)) if changes else self

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_wire(changes: Mapping[str, Any] | None, *, where: str = "wire") -> dict[str, str]:
    """Validated `{name: value}` (values as strings, so YAML's `create_status: 201` works)."""
    if changes is None:
        return {}
    if not isinstance(changes, Mapping):
        raise WireError(f"{where} must be a mapping of name: value")
    out: dict[str, str] = {}
    for name, raw in changes.items():
        allowed = WIRE_OPTIONS.get(str(name))
        if allowed is None:
            raise WireError(f"{where}: unknown wire name {name!r}; known: {', '.join(WIRE_OPTIONS)}")
        value = str(raw).strip().lower() if not isinstance(raw, bool) else str(raw)
        if value not in allowed:
            raise WireError(f"{where}.{name}: {raw!r} is not one of: {', '.join(allowed)}")
        out[str(name)] = value
    return out


def parse_wire_args(items: Iterable[str] | None) -> dict[str, str]:
    """`["not_linked=flat", "create_status=201"]` (repeatable `--wire NAME=VALUE` options), validated."""
    pairs: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise WireError(f"--wire {item!r}: use NAME=VALUE, e.g. --wire not_linked=flat")
        pairs[name.strip()] = value.strip()
    return check_wire(pairs, where="--wire")


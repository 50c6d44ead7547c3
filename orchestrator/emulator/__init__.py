"""The built-in Azure emulator: Entra ID, Key Vault, ManagementPartner, IMDS over HTTPS on 127.0.0.1.

See README.md in this folder for the world format, fault options and how to point clients at it.
"""

from __future__ import annotations

from . import ports
from .common import RequestRecord
from .faults import FaultError, FaultSpec
from .inprocess import Emulator, issue_token_for, mint_federated_assertion
from .model import FEDERATED_AUDIENCE, FederatedCredential, IdentityRecord, Operator
from .process import EmulatorProcess, EmulatorStartError, run_emulator, serve, start_subprocess
from .wire import WIRE_OPTIONS, Wire, WireError, parse_wire_args
from .world import World, WorldError, load_world

__all__ = [
    "FEDERATED_AUDIENCE",
    "WIRE_OPTIONS",
    "Emulator",
    "EmulatorProcess",
    "EmulatorStartError",
    "FaultError",
    "FaultSpec",
    "FederatedCredential",
    "IdentityRecord",
    "Operator",
    "RequestRecord",
    "Wire",
    "WireError",
    "World",
    "WorldError",
    "issue_token_for",
    "load_world",
    "mint_federated_assertion",
    "parse_wire_args",
    "ports",
    "run_emulator",
    "serve",
    "start_subprocess",
]

"""Running the emulator as its own process: `python -m orchestrator.emulator`, and a helper to start one.

The process prints ONE machine-readable line first on stdout, then help for humans:

    PAL-EMULATOR READY url=https://127.0.0.1:PORT ca=/path/to/ca.pem

and serves until SIGTERM/SIGINT. `start_subprocess` waits for that line and returns an `EmulatorProcess`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from ..gctuning import tune_for_batch
from .server import EmulatorServer, build_fault_state, coerce_world
from .tls import prepare_tls
from .wire import parse_wire_args

READY_PREFIX = "PAL-EMULATOR READY"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_READY = re.compile(r"^PAL-EMULATOR READY url=(\S+) ca=(.+)$")


class EmulatorStartError(RuntimeError):
    """The emulator process exited or stayed silent before printing its ready line."""


def _load_faults(path: str | Path | None) -> dict[str, Any] | None:
    if not path:
        return None
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506 - safe loader
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a faults file is a mapping")
    return data


def _instructions(url: str, ca: str, server: EmulatorServer) -> str:
    op = server.world.operator
    vault = next(iter(server.world.vaults.values())).name if server.world.vaults else "VAULT"
    lines = [
        f"Azure emulator serving {len(server.world.tenants)} tenants, {len(server.world.identities)} identities, "
        f"{len(server.world.vaults)} vault(s) at {url}",
        "Point pal-orchestrator at it (the operator below is the emulator's own, fake app):",
    ]
    if op is not None:
        lines += [
            f"  export AZURE_TENANT_ID={op.tenant_id}",
            f"  export AZURE_CLIENT_ID={op.client_id}",
            f"  export AZURE_CLIENT_SECRET={op.secret}",
            f"  export AZURE_AUTHORITY_HOST={url}",
        ]
    lines += [
        f"  pal-orchestrator link INVENTORY --cloud custom --authority-host {url} --arm-endpoint {url}/ "
        f"--ca-bundle {ca} --key-vault {url}/vaults/{vault} --operator-auth env",
        f"Stats: {url}/_emulator/stats   Faults: POST {url}/_emulator/faults",
        "Stop with Ctrl-C or SIGTERM.",
    ]
    return "\n".join(lines) + "\n"


def run_emulator(
    world_path: str | Path | None,
    port: int = 0,
    latency_ms: float = 0.0,
    faults_path: str | Path | None = None,
    ca_dir: str | Path | None = None,
    seed: int = 0,
    *,
    wire: Mapping[str, Any] | None = None,
    out: IO[str] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; the ready line goes first to `out` (stdout by default), flushed.

    `wire` ({name: value}, see wire.py) wins over the world file's `wire:`; a bad one raises WireError.
    """
    stream = out or sys.stdout
    tune_for_batch(freeze=False)  # loading a big world allocates millions of objects: fewer collections
    world = coerce_world(world_path)
    faults = build_fault_state(world, faults=_load_faults(faults_path), latency_s=latency_ms / 1000.0, seed=seed)
    server = EmulatorServer(world, faults)
    server.wire = server.wire.updated(wire, where="--wire")
    ca_path, ctx, tmp = prepare_tls(Path(ca_dir) if ca_dir else None)
    tune_for_batch()  # the world (every key and certificate) stays alive: out of every full collection

    async def main() -> None:
        await server.start(ctx, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        stream.write(f"{READY_PREFIX} url={server.url} ca={ca_path}\n")
        stream.write(_instructions(server.url, ca_path, server))
        stream.flush()
        try:
            await stop.wait()
        finally:
            await server.stop()

    profile = os.environ.get("PAL_EMULATOR_PROFILE")  # dev only: pstats of the serving process, written at exit
    profiler = cProfile.Profile() if profile else None
    try:
        if profiler is not None:
            profiler.enable()
        asyncio.run(main())
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        if tmp is not None:
            tmp.cleanup()


def serve(argv: list[str] | None = None) -> int:
    """`python -m orchestrator.emulator` — parse options and run; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator.emulator",
                                     description="Run the built-in Azure emulator over HTTPS on 127.0.0.1.")
    parser.add_argument("--world", help="world YAML file (default: an operator and one empty vault)")
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    parser.add_argument("--faults", help="faults YAML file (see README.md)")
    parser.add_argument("--ca-dir", help="directory to write ca.pem to (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=0, help="seed for fault randomness")
    parser.add_argument("--wire", action="append", default=[], metavar="NAME=VALUE",
                        help="a ManagementPartner wire variant, repeatable (see README.md: wire)")
    args = parser.parse_args(argv)
    try:
        wire = parse_wire_args(args.wire)
        run_emulator(args.world, args.port, args.latency_ms, args.faults, args.ca_dir, args.seed, wire=wire)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"emulator: {exc}\n")
        return 2
    return 0


class EmulatorProcess:
    """A running `python -m orchestrator.emulator` child process."""

    def __init__(self, proc: subprocess.Popen[str], url: str, ca_path: str) -> None:
        self.proc = proc
        self.url = url
        self.ca_path = ca_path
        self._ssl = ssl.create_default_context(cafile=ca_path)
        self.output: list[str] = []
        # Drain the rest of stdout so the child never blocks on a full pipe.
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def authority_host(self) -> str:
        return self.url

    @property
    def arm_endpoint(self) -> str:
        return self.url + "/"

    def vault_url(self, name: str) -> str:
        return f"{self.url}/vaults/{name}"

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - always our own https://127.0.0.1 URL
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, context=self._ssl, timeout=10) as resp:  # noqa: S310
            return json.load(resp)

    def stats(self) -> dict[str, Any]:
        """GET /_emulator/stats (counters, writes, links, cpu_s of the emulator process)."""
        result: dict[str, Any] = self._call("GET", "/_emulator/stats")
        return result

    def set_faults(self, config: Mapping[str, Any], *, replace: bool = True) -> None:
        """POST /_emulator/faults with a faults mapping (as in faults.yaml)."""
        self._call("POST", "/_emulator/faults", {**config, "replace": replace})

    def set_wire(self, **names: Any) -> dict[str, str]:
        """POST /_emulator/wire: change wire variants live; returns the variants now served."""
        result: dict[str, str] = self._call("POST", "/_emulator/wire", names)
        return result

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return int(self.proc.returncode)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_subprocess(
    world_path: str | Path | None = None,
    *,
    port: int = 0,
    latency_ms: float = 0.0,
    faults_path: str | Path | None = None,
    ca_dir: str | Path | None = None,
    seed: int = 0,
    wire: Mapping[str, Any] | None = None,
    timeout_s: float = 60.0,
    python: str | None = None,
) -> EmulatorProcess:
    """Start the emulator as a child process and wait for its ready line."""
    cmd = [python or sys.executable, "-m", "orchestrator.emulator", "--port", str(port),
           "--latency-ms", str(latency_ms), "--seed", str(seed)]
    if world_path:
        cmd += ["--world", str(world_path)]
    if faults_path:
        cmd += ["--faults", str(faults_path)]
    if ca_dir:
        cmd += ["--ca-dir", str(ca_dir)]
    for name, value in (wire or {}).items():
        cmd += ["--wire", f"{name}={value}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)  # noqa: S603
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline() if proc.stdout else ""),
                              daemon=True)
    reader.start()
    reader.join(timeout_s)
    line = first[0].strip() if first else ""
    m = _READY.match(line)
    if m is None:
        proc.kill()
        proc.wait(10)
        raise EmulatorStartError(f"emulator did not become ready (first line: {line[:200]!r}, "
                                 f"exit code {proc.returncode})")
    return EmulatorProcess(proc, m.group(1), m.group(2))

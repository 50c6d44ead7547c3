"""No secret leaks: canary values as every client secret, certificate key and token, through every path.

One world holds an identity per path: success with a secret, a PEM and a PFX certificate; a wrong secret;
Key Vault 403 and 404; 5xx on sign-in and on ARM until attempts are spent. The operator's own secret is a
canary too, and the access tokens are whatever the emulator issued. The runs: in-process CLI with `--debug
--output json`, a real subprocess with `--debug --output json`, and a real subprocess with `--debug` killed
with SIGKILL mid-run then resumed. Then stdout, stderr, every file under the run's directory (journal, its
-wal/-shm, lock, reports, logs) are searched for each canary raw, base64 (every alignment, standard and
URL-safe) and URL-encoded: zero occurrences.
"""

from __future__ import annotations

import ast
import base64
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from test_link import Cli
from test_reliability_crash import ROOT, _env, link_argv
from test_reliability_faults import OPERATOR_TENANT, PARTNER, write_rows

from orchestrator.emulator import Emulator, IdentityRecord, World
from orchestrator.journal import Journal

SOURCE = ROOT / "orchestrator"


def _canary(i: int) -> str:
    # '+', '/', '=' and '~' make the URL-encoded and form-encoded forms differ from the raw one
    return f"CANARY+{i:03d}/pal~s3cr3t={random.Random(i).getrandbits(64):016x}"


def canary_world() -> tuple[World, dict[str, IdentityRecord]]:
    """A world whose every secret value is a canary, with one identity per failure path."""
    world = World.from_dict({
        "operator": {"tenant": OPERATOR_TENANT, "secret": _canary(0)},
        "vaults": [{"name": "pal-vault"}, {"name": "locked-vault", "readers": [], "include_operator": False}],
        "partners": [{"partner_id": PARTNER, "name": "Contoso Partner"}],
    })
    made = {
        "ok-secret": world.add_identity(world.new_guid(), "secret", secret_name="ok-secret"),
        "ok-pem": world.add_identity(world.new_guid(), "certificate-pem", secret_name="ok-pem"),
        "ok-pfx": world.add_identity(world.new_guid(), "certificate-pfx", secret_name="ok-pfx"),
        "wrong-secret": world.add_identity(world.new_guid(), "secret", secret_name="wrong-secret", registered=False),
        "kv-403": world.add_identity(world.new_guid(), "secret", secret_name="kv-403", vault="locked-vault"),
        "kv-404": world.add_identity(world.new_guid(), "secret", secret_name="kv-404", kv_missing=True),
        "entra-5xx": world.add_identity(world.new_guid(), "secret", secret_name="entra-5xx"),
        "arm-5xx": world.add_identity(world.new_guid(), "secret", secret_name="arm-5xx"),
    }
    for i, record in enumerate(made.values(), start=1):
        if record.credential != "secret":
            continue
        value = _canary(i)
        versions = world.vaults[record.vault.lower()].secrets.get(record.secret_name.lower())
        app = world.app(record.tenant_id, record.client_id)
        assert app is not None
        if versions:
            versions[-1].value = value
        if record.secret_name == "wrong-secret":
            app.secrets[0].value = _canary(100 + i)  # registered: another canary; Key Vault: the wrong one
        else:
            app.secrets[0].value = value
    # tenants are per identity in this world, but Key Vault 404/403 rows must exist as apps for nothing else
    return world, made


def certificate_needles(value: str, credential: str) -> list[bytes]:
    """Pieces of a certificate secret that must never be written: key PEM lines, PFX base64, key DER."""
    needles: list[bytes] = []
    if credential == "certificate-pem":
        data = value.encode()
        key_block = data[data.index(b"-----BEGIN") : data.index(b"-----END")]
        needles += [line for line in key_block.splitlines()[1:] if len(line) >= 40]
        key: Any = serialization.load_pem_private_key(data, None)
    else:
        needles += [value[i : i + 48].encode() for i in range(0, len(value) - 48, 400)]
        key, _, _ = pkcs12.load_key_and_certificates(base64.b64decode(value), None)
        assert key is not None
    der: bytes = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    needles += [der[i : i + 24] for i in range(64, len(der) - 24, 96)]
    return needles


def secret_needles(em: Emulator) -> dict[str, list[bytes]]:
    """Every secret the world holds: client secrets (Key Vault and registered), keys, operator secret."""
    found: dict[str, list[bytes]] = {"operator": [em.operator.secret.encode()]}
    for vault in em.world.vaults.values():
        for name, versions in vault.secrets.items():
            record = next((r for r in em.world.identities if r.secret_name.lower() == name), None)
            value = versions[-1].value
            if record is not None and record.credential != "secret":
                found[name] = certificate_needles(value, record.credential)
            else:
                found[name] = [value.encode()]
    for tenant in em.world.tenants.values():
        for app in tenant.apps.values():
            for s in app.secrets:
                found.setdefault(f"app-{app.client_id}", []).append(s.value.encode())
    return found


def token_needles(em: Emulator) -> list[bytes]:
    """Every access token the emulator issued in this test (the whole JWT and its signature)."""
    tokens = [token for _, token in em._server._issued.values()]  # the emulator's record of issued tokens
    assert tokens, "no token was issued: the runs did not sign in"
    needles: list[bytes] = []
    for token in tokens:
        needles += [token.encode(), token.rsplit(".", 1)[-1].encode()]
    return needles


def encodings(needle: bytes) -> Iterator[bytes]:
    """The raw value, its base64 (standard and URL-safe, at every byte alignment) and URL-encoded forms."""
    yield needle
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + needle).rstrip(b"=")
            core = encoded[4 if pad else 0 : -4]  # drop the characters that depend on the neighbours
            if len(core) >= 12:
                yield core
    try:
        text = needle.decode()
    except UnicodeDecodeError:
        return
    for form in (quote(text, safe=""), quote_plus(text, safe=""), quote(text)):
        yield form.encode()


def assert_no_leak(haystacks: dict[str, bytes], needles: dict[str, list[bytes]]) -> None:
    """Fail naming where which secret appeared, in which form, without printing the secret."""
    leaks = []
    for where, hay in haystacks.items():
        for what, values in needles.items():
            for value in values:
                for i, form in enumerate(encodings(value)):
                    if form and form in hay:
                        leaks.append(f"{what} (form {i}) in {where}")
    assert leaks == [], leaks[:20]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def canary_emulator(emulator_factory: Callable[..., Emulator]) -> tuple[Emulator, dict[str, IdentityRecord]]:
    world, made = canary_world()
    em = emulator_factory(world)
    em.set_faults("entra", made["entra-5xx"].tenant_id, rate_503=1.0)
    em.set_faults("arm", made["arm-5xx"].tenant_id, rate_503=1.0)
    return em, made


def test_canaries_never_reach_output_logs_journal_or_reports(
    canary_emulator: tuple[Emulator, dict[str, IdentityRecord]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    """Success, wrong secret, KV 403/404, 5xx exhausted, `--debug`, `--output json`, in-process and as a real
    process, and a SIGKILLed `--debug` run resumed: no canary, raw or encoded, in any byte we wrote."""
    em, made = canary_emulator
    inv = write_rows(tmp_path / "inv.csv", em, made.values())
    haystacks: dict[str, bytes] = {}

    # 1. in-process, --debug --output json
    cli = Cli(em, tmp_path / "inproc", monkeypatch)
    (tmp_path / "inproc").mkdir()
    result = cli("link", inv, "--debug", "--output", "json", "--no-recognition", "--max-attempts", "3")
    assert result.exit_code == 1, result.output
    captured = capfd.readouterr()
    statuses = cli.statuses()
    expected = {
        "ok-secret": "linked", "ok-pem": "linked", "ok-pfx": "linked", "wrong-secret": "credential_invalid",
        "kv-403": "credential_forbidden", "kv-404": "credential_missing", "entra-5xx": "failed",
        "arm-5xx": "failed",
    }
    assert {name: statuses[r.client_id] for name, r in made.items()} == expected
    haystacks.update({"inproc output": result.output.encode(), "inproc stdout": captured.out.encode(),
                      "inproc stderr": captured.err.encode()})

    # 2. a real process, --debug --output json (a fresh journal; links exist now, so re-link them first)
    em.world.links.clear()
    sub = tmp_path / "sub"
    sub.mkdir()
    proc = subprocess.run(
        [*link_argv(em, inv, sub / "journal.sqlite", sub / "reports"), "--debug", "--output", "json"],
        cwd=ROOT, env=_env(em), capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert b'"status": "linked"' in proc.stdout or b'"status":"linked"' in proc.stdout
    assert b"DEBUG" in proc.stderr  # --debug really logged
    haystacks.update({"sub stdout": proc.stdout, "sub stderr": proc.stderr})

    # 3. a real --debug process killed mid-run (the -wal holds the outcomes), then resumed
    em.world.links.clear()
    em.set_faults(latency_s=0.05)
    crash = tmp_path / "crash"
    crash.mkdir()
    argv = [*link_argv(em, inv, crash / "journal.sqlite", crash / "reports"), "--debug", "--concurrency", "1"]
    seen = len(em.requests)
    killed = subprocess.Popen(argv, cwd=ROOT, env=_env(em), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(em.requests) < seen + 12 and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if killed.poll() is None:
        os.kill(killed.pid, signal.SIGKILL)
    out, err = killed.communicate(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    haystacks.update({"killed stdout": out, "killed stderr": err})
    haystacks.update({f"after kill {k}": v for k, v in files_under(crash).items()})
    em.set_faults(latency_s=0.0)
    resumed = subprocess.run([*argv, "--resume"], cwd=ROOT, env=_env(em), capture_output=True, timeout=120,
                             check=False)
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    haystacks.update({"resumed stdout": resumed.stdout, "resumed stderr": resumed.stderr})

    haystacks.update(files_under(tmp_path))
    assert any(k.endswith("coverage.xlsx") for k in haystacks) and any(k.endswith("-wal") for k in haystacks)
    needles = secret_needles(em)
    needles["tokens"] = token_needles(em)
    assert sum(len(v) for v in needles.values()) > 20
    assert_no_leak(haystacks, needles)
    with Journal(crash / "journal.sqlite") as journal:
        assert journal.integrity_ok()


def test_the_scanner_finds_a_planted_canary_in_every_form(tmp_path: Path) -> None:
    """The leak check itself works: raw, base64 at an odd offset, URL-safe base64 and URL-encoded plants."""
    secret = _canary(7).encode()
    plants = {
        "raw": b"x" + secret + b"y",
        "b64": base64.b64encode(b"ab" + secret + b"cd"),
        "b64url": base64.urlsafe_b64encode(b"q" + secret),
        "url": quote(secret.decode(), safe="").encode(),
        "form": quote_plus(secret.decode()).encode(),
    }
    for where, hay in plants.items():
        with pytest.raises(AssertionError):
            assert_no_leak({where: hay}, {"canary": [secret]})
    assert_no_leak({"clean": b"nothing here"}, {"canary": [secret]})


def _calls_with_logging_enable(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "logging_enable":
            value = node.value
            if not (isinstance(value, ast.Constant) and value.value is False):
                found.append(f"{where}:{value.lineno}")
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and key.value == "logging_enable":
                    found.append(f"{where}:{key.lineno} (in a dict)")
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name == "NetworkTraceLoggingPolicy":
                found.append(f"{where}:{node.lineno} (NetworkTraceLoggingPolicy)")
    return found


def test_no_sdk_client_is_built_with_network_trace_logging() -> None:
    """No source file passes `logging_enable` (other than False) or builds a NetworkTraceLoggingPolicy:
    that policy logs client secrets, tokens and Authorization headers unredacted."""
    sources = sorted(SOURCE.rglob("*.py"))
    assert len(sources) > 10
    offenders = [hit for path in sources for hit in _calls_with_logging_enable(path)]
    assert offenders == []


def test_the_logging_enable_check_catches_a_planted_call(tmp_path: Path) -> None:
    """The AST check flags `logging_enable=True`, a variable, and a kwargs dict, and passes `=False`."""
    bad = tmp_path / "planted.py"
    bad.write_text("c = C(x, logging_enable=True)\nd = C(logging_enable=flag)\ne = C(**{'logging_enable': 1})\n"
                   "ok = C(logging_enable=False)\n")
    assert len(_calls_with_logging_enable(bad)) == 3

"""The seeds' way, for comparison: per identity, one Azure CLI process per step, as the guides do it.

Read the secret as the operator (`az rest GET`), convert a PFX with `openssl pkcs12`, `az login
--service-principal`, then `az rest --method put` on the partner URL. The Azure CLI comes from PyPI into its own
virtualenv and is pointed at the emulator as a registered cloud; its config lives in a private temp directory.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from .figures import step_figures
from .measure import BenchError, Measured, check, clean_env, run_capture, run_measured
from .steps import Bench
from .worlds import OPERATOR, PARTNER_ID, VAULT, Entry

log = logging.getLogger(__name__)

KV_API_VERSION = "7.4"
PAL_API_VERSION = "2018-02-01"

HOW = ("az rest GET on the secret (operator; `az keyvault secret show --id` rejects a non-Azure vault "
       "host), openssl pkcs12 for PFX, az login --service-principal, az rest --method put")


def ensure_azure_cli(venv: Path) -> tuple[Path | None, str]:
    """`az` from PyPI in its own virtualenv (created on first use); (None, why) when it cannot be installed."""
    az = venv / "bin" / "az"
    if az.exists():
        return az, "present"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)  # noqa: S603
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=600)  # noqa: S603
        subprocess.run([*pip, "azure-cli"], check=True, timeout=1800)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"the Azure CLI could not be installed into {venv}: {type(exc).__name__}: {exc}"
    return (az, "installed") if az.exists() else (None, f"pip install azure-cli left no {az}")


def _az_env(url: str, ca: str, config_dir: Path) -> dict[str, str]:
    """A quiet, telemetry-free Azure CLI with its own config directory, trusting the emulator's CA."""
    return clean_env({
        "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_INSTANCE_DISCOVERY": "false",
        "AZURE_CORE_ONLY_SHOW_ERRORS": "true", "AZURE_CORE_SURVEY_MESSAGE": "false",
        "AZURE_CORE_NO_COLOR": "true", "AZURE_CORE_DISABLE_CONFIRM_PROMPT": "true",
        "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no", "REQUESTS_CA_BUNDLE": ca, "AZURE_CONFIG_DIR": str(config_dir),
    })


def _az_setup(az: Path, url: str, envs: tuple[dict[str, str], ...], operator_secret: str) -> None:
    """Register the emulator as a cloud in every config directory; sign the operator in (not counted)."""
    for env in envs:
        for argv in (
            [str(az), "cloud", "register", "-n", "PalEmulator", "--skip-endpoint-discovery",
             "--endpoint-active-directory", url, "--endpoint-resource-manager", url + "/",
             "--endpoint-active-directory-resource-id", url + "/", "--endpoint-management", url + "/",
             "--endpoint-active-directory-graph-resource-id", url + "/",
             "--suffix-keyvault-dns", ".vault.azure.net"],
            [str(az), "cloud", "set", "-n", "PalEmulator"],
        ):
            check(run_measured(argv, env=env), "az cloud register/set")
    check(run_measured(
        [str(az), "login", "--service-principal", "-u", OPERATOR["client_id"],
         f"--password={operator_secret}", "--tenant", OPERATOR["tenant"], "--allow-no-subscriptions",
         "-o", "none"], env=envs[0]), "az login (operator)")


def seeds_step(bench: Bench, az: Path) -> dict[str, Any]:
    """Per identity, as the guides do: read the secret, `az login --service-principal`, `az rest --method put`."""
    em = bench.em
    entries = bench.plan.sets["seeds"]
    work = bench.workdir / "seeds"
    work.mkdir(exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="pal-bench-az-") as tmp:
        keys = Path(tmp) / "keys"
        keys.mkdir(mode=0o700)
        env_op, env_id = _az_env(em.url, em.ca, Path(tmp) / "operator"), _az_env(em.url, em.ca, Path(tmp) / "identity")
        setup_started = time.perf_counter()
        _az_setup(az, em.url, (env_op, env_id), bench.operator_secret)
        setup_s = time.perf_counter() - setup_started
        before = em.stats()
        costs: list[Measured] = []
        started = time.perf_counter()
        failures = 0
        with (work / "az-stderr.log").open("ab") as az_log:
            for e in entries:
                try:
                    costs.extend(_seed_one(az, em.url, e, (env_op, env_id), keys, az_log))
                except BenchError as exc:
                    failures += 1
                    log.warning("seeds' way, %s: %s", e.secret_name, exc)
        wall = time.perf_counter() - started
        after = em.stats()
    total = Measured(0 if not failures else 1, wall, sum(c.user_s for c in costs), sum(c.sys_s for c in costs),
                     max((c.peak_rss_mb for c in costs), default=0.0))
    result = step_figures(len(entries), total, before, after)
    result.update({
        "processes": len(costs), "processes_per_identity": round(len(costs) / max(len(entries), 1), 2),
        "failures": failures, "setup_s": round(setup_s, 2), "concurrency": 1,
        "writes": after.get("writes_total", 0) - before.get("writes_total", 0), "how": HOW,
    })
    return result


def _credential_args(
    e: Entry, value: str, keys: Path, env_id: dict[str, str], az_log: IO[bytes],
) -> tuple[list[str], list[Measured]]:
    """The `az login` arguments for one identity's credential, and the cost of converting a PFX with openssl."""
    if e.credential == "secret":
        return [f"--password={value}"], []
    costs: list[Measured] = []
    pem = keys / f"{e.secret_name}.pem"
    pem.touch(mode=0o600)
    if e.credential == "certificate-pem":
        pem.write_text(value, encoding="ascii")
    else:
        pfx = keys / f"{e.secret_name}.pfx"
        pfx.touch(mode=0o600)
        pfx.write_bytes(base64.b64decode(value))
        openssl = shutil.which("openssl")
        if openssl is None:
            raise BenchError("openssl is not installed (the guides convert PFX with it)")
        costs.append(check(run_measured(
            [openssl, "pkcs12", "-in", str(pfx), "-out", str(pem), "-nodes", "-passin", "pass:"],
            env=env_id, stderr=az_log), "openssl pkcs12"))
        pfx.unlink()
    return ["--certificate", str(pem)], costs


def _seed_one(
    az: Path, url: str, e: Entry, envs: tuple[dict[str, str], dict[str, str]], keys: Path, az_log: IO[bytes],
) -> list[Measured]:
    """One identity the seeds' way; the cost of every process it took."""
    env_op, env_id = envs
    costs: list[Measured] = []
    m, out = run_capture(
        [str(az), "rest", "--method", "get", "--url",
         f"{url}/vaults/{VAULT}/secrets/{e.secret_name}?api-version={KV_API_VERSION}",
         "--resource", "https://vault.azure.net", "--query", "{t:contentType,v:value}", "-o", "json"],
        env=env_op, stderr=az_log,
    )
    costs.append(check(m, "az rest GET secret"))
    secret = json.loads(out)
    login = [str(az), "login", "--service-principal", "-u", e.client_id, "--tenant", e.tenant_id,
             "--allow-no-subscriptions", "-o", "none"]
    try:
        args, conversion = _credential_args(e, secret["v"], keys, env_id, az_log)
        login += args
        costs += conversion
        del secret
        costs.append(check(run_measured(login, env=env_id, stderr=az_log), "az login (identity)"))
        # az keeps the certificate's *path* and reads it again for the token: remove it only afterwards
        costs.append(check(run_measured(
            [str(az), "rest", "--method", "put", "--url",
             f"{url}/providers/Microsoft.ManagementPartner/partners/{PARTNER_ID}?api-version={PAL_API_VERSION}",
             "-o", "none"], env=env_id, stderr=az_log), "az rest PUT"))
    finally:
        (keys / f"{e.secret_name}.pem").unlink(missing_ok=True)
    return costs

"""Every option a command shares (each also from an environment variable PAL_*), declared once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..journal import DEFAULT_JOURNAL
from ..models import Cloud
from ..settings import DEFAULT_CONCURRENCY, DEFAULT_RETRY

if TYPE_CHECKING:
    pass



class Output(StrEnum):
    table = "table"
    json = "json"


class OperatorAuth(StrEnum):
    default = "default"
    env = "env"
    cli = "cli"
    managed_identity = "managed-identity"


# -- shared options (each also from an environment variable PAL_*) --------------------------------------------

InventoryArg = Annotated[Path, typer.Argument(help="Inventory file: CSV, YAML or XLSX (see docs/inventory.md).")]
RunInventoryArg = Annotated[
    Path | None, typer.Argument(help="Inventory file: CSV, YAML or XLSX (see docs/inventory.md); omit with --self.")
]
SelfOpt = Annotated[
    bool,
    typer.Option("--self", help="Act on the identity you are signed in as (Azure CLI, environment, managed "
                 "identity, workload identity: --operator-auth), not an inventory."),
]
def _partner_id(value: str | None) -> str | None:
    """A malformed --partner-id is the option's fault, not every row's: a usage error naming it (exit 2)."""
    from ..inventory import check_partner_id_option

    problem = check_partner_id_option(value)
    if problem:
        raise typer.BadParameter(f"{problem} from Partner Center (not the global PGA ID)")
    return value.strip() if value and value.strip() else None


PartnerOpt = Annotated[
    str | None,
    typer.Option("--partner-id", envvar="PAL_PARTNER_ID", callback=_partner_id,
                 help="Default partner location ID (6–10 digits)."),
]
VaultOpt = Annotated[
    str | None,
    typer.Option("--key-vault", envvar="PAL_KEY_VAULT", help="Default Key Vault (name or URL) for rows without one."),
]
CloudOpt = Annotated[Cloud, typer.Option("--cloud", envvar="PAL_CLOUD", help="Default cloud for rows without one.")]
SheetOpt = Annotated[str | None, typer.Option("--sheet", envvar="PAL_SHEET", help="XLSX sheet (default: the first).")]
ConcurrencyOpt = Annotated[
    int,
    typer.Option("--concurrency", envvar="PAL_CONCURRENCY", min=1, max=1024, help="Identities in flight at once."),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", envvar="PAL_WORKERS", min=1, max=256,
                 help="Processes sharing the identities (one journal writer: this process). 1: this process "
                      "alone. Default: one per 1,000 identities up to one per core, so a run below 2,000 "
                      "identities stays in one process."),
]
JournalOpt = Annotated[
    Path, typer.Option("--journal", envvar="PAL_JOURNAL",
                 help="SQLite run journal: the history each run is compared with; keep it between runs.")
]
ReportDirOpt = Annotated[
    Path,
    typer.Option("--report-dir", envvar="PAL_REPORT_DIR",
                 help="Where reports land: one folder per run (<run_id>/) and latest/ (the last link or audit run)."),
]
SummaryMdOpt = Annotated[
    Path | None,
    typer.Option("--summary-md", envvar="PAL_SUMMARY_MD",
                 help="Also write a short Markdown summary of the run here (from summary.json); it is appended to "
                      "$GITHUB_STEP_SUMMARY whenever that is set."),
]
BaselineOpt = Annotated[
    str | None,
    typer.Option("--baseline", envvar="PAL_BASELINE", metavar="RUN_ID",
                 help="Compare with this link/audit run (default: the latest finished link or audit run that "
                      "covered any of the same identities, whatever the inventory file is called)."),
]
OutputOpt = Annotated[
    Output, typer.Option("--output", envvar="PAL_OUTPUT", help="Results on stdout as a table or JSON.")
]
AuthorityOpt = Annotated[
    str | None,
    typer.Option("--authority-host", envvar="PAL_AUTHORITY_HOST", help="Entra authority (custom clouds)."),
]
ArmOpt = Annotated[
    str | None, typer.Option("--arm-endpoint", envvar="PAL_ARM_ENDPOINT", help="Resource Manager endpoint.")
]
CaOpt = Annotated[
    Path | None,
    typer.Option("--ca-bundle", envvar="PAL_CA_BUNDLE", help="PEM CA bundle trusted in addition to system roots."),
]
VaultSuffixOpt = Annotated[
    list[str] | None,
    typer.Option("--vault-host-suffix", envvar="PAL_VAULT_HOST_SUFFIX",
                 help="With --cloud custom: also trust vaults whose host ends with this (repeatable), e.g. "
                      ".vault.local.azurestack.external. The operator's token never goes to other hosts."),
]
OperatorOpt = Annotated[
    OperatorAuth,
    typer.Option("--operator-auth", envvar="PAL_OPERATOR_AUTH", help="How the orchestrator signs in to Key Vault."),
]
AttemptsOpt = Annotated[
    int,
    typer.Option("--max-attempts", envvar="PAL_MAX_ATTEMPTS", min=1, max=50,
                 help="HTTP requests at most per call (Key Vault read, token, GET, PUT…), retries included."),
]
RetryCapOpt = Annotated[
    float,
    typer.Option("--retry-after-cap", envvar="PAL_RETRY_AFTER_CAP", min=0,
                 help="Longest Retry-After honoured (s); a longer one fails the row with the wait recorded."),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", envvar="PAL_TIMEOUT", min=0.1, help="Seconds one HTTP attempt may take.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", envvar="PAL_DEBUG", help="Verbose logs (secrets stay redacted).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the last unfinished run of this inventory.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="With --resume: accept a changed inventory.")]
RecognitionOpt = Annotated[
    bool,
    typer.Option("--recognition/--no-recognition", envvar="PAL_RECOGNITION",
                 help="Check PEC-eligible role assignments of each identity."),
]
ExpiryOpt = Annotated[
    int,
    typer.Option("--expiry-warning-days", envvar="PAL_EXPIRY_WARNING_DAYS", min=0,
                 help="Credentials expiring within this many days are listed in the report."),
]

FederationOpt = Annotated[
    str | None,
    typer.Option("--federation-identity", envvar="PAL_FEDERATION_IDENTITY", metavar="CLIENT_ID",
                 help="Client ID of the user-assigned managed identity that managed_identity_federation rows "
                      "without a federation_identity sign in through (see docs/federation.md)."),
]


_RUN_OPTIONS: list[tuple[str, Any, Any]] = [
    ("partner_id", PartnerOpt, None),
    ("key_vault", VaultOpt, None),
    ("cloud", CloudOpt, Cloud.PUBLIC),
    ("sheet", SheetOpt, None),
    ("concurrency", ConcurrencyOpt, DEFAULT_CONCURRENCY),
    ("workers", WorkersOpt, None),
    ("journal", JournalOpt, Path(DEFAULT_JOURNAL)),
    ("report_dir", ReportDirOpt, Path("reports")),
    ("output", OutputOpt, Output.table),
    ("authority_host", AuthorityOpt, None),
    ("arm_endpoint", ArmOpt, None),
    ("ca_bundle", CaOpt, None),
    ("vault_host_suffix", VaultSuffixOpt, None),
    ("operator_auth", OperatorOpt, OperatorAuth.default),
    ("max_attempts", AttemptsOpt, DEFAULT_RETRY.attempts),
    ("retry_after_cap", RetryCapOpt, DEFAULT_RETRY.retry_after_cap_s),
    ("timeout", TimeoutOpt, DEFAULT_RETRY.timeout_s),
    ("debug", DebugOpt, False),
    ("federation_identity", FederationOpt, None),
    ("summary_md", SummaryMdOpt, None),
]


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a run command the shared options; it receives them as one `shared` dict.

    typer reads a command's options from its signature, so the wrapper's signature is the command's own
    parameters followed by the shared ones, written once in _RUN_OPTIONS instead of four times.
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "shared"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, annotation, default in _RUN_OPTIONS]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        shared = {name: kwargs.pop(name) for name, _, _ in _RUN_OPTIONS}
        command(**kwargs, shared=shared)

    wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
    return wrapper


def _run_kwargs(shared: dict[str, Any]) -> dict[str, Any]:
    """Shared options → RunOptions keyword arguments."""
    return {
        "partner_id": shared["partner_id"], "key_vault": shared["key_vault"], "cloud": shared["cloud"],
        "authority_host": shared["authority_host"], "arm_endpoint": shared["arm_endpoint"],
        "ca_bundle": str(shared["ca_bundle"]) if shared["ca_bundle"] else None,
        "operator_auth": shared["operator_auth"].value, "concurrency": shared["concurrency"],
        "workers": shared["workers"],
        "vault_host_suffixes": tuple(shared["vault_host_suffix"] or ()),
        "journal": str(shared["journal"]), "report_dir": str(shared["report_dir"]), "sheet": shared["sheet"],
        "retry": replace(DEFAULT_RETRY, attempts=shared["max_attempts"], retry_after_cap_s=shared["retry_after_cap"],
                         timeout_s=shared["timeout"]),
        "federation_identity": shared["federation_identity"] or None,
    }



"""The options of one run, and the per-identity endpoints they resolve to.

Apart from the runner so that the fan-out (in-process or in a worker process) can use them without importing the
runner: the runner imports the fan-out, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import UsageError
from .journal import DEFAULT_JOURNAL
from .models import Cloud, Command, Identity
from .settings import DEFAULT_CONCURRENCY, DEFAULT_RETRY, Endpoints, RetrySettings, endpoints_for


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything a run needs, as given by the CLI (or a test)."""

    command: Command
    inventory: str
    partner_id: str | None = None
    key_vault: str | None = None
    cloud: Cloud = Cloud.PUBLIC
    authority_host: str | None = None
    arm_endpoint: str | None = None
    ca_bundle: str | None = None
    operator_auth: str = "default"
    concurrency: int = DEFAULT_CONCURRENCY
    journal: str = DEFAULT_JOURNAL
    report_dir: str = "reports"
    overwrite: bool = False
    resume: bool = False
    force: bool = False
    recognition: bool = False
    expiry_warning_days: int = 120
    sheet: str | None = None
    retry: RetrySettings = field(default_factory=lambda: DEFAULT_RETRY)
    write_reports: bool = True
    self_link: bool = False
    vault_host_suffixes: tuple[str, ...] = ()
    partner_name: str | None = None  # --partner-name: the name the service must give the --partner-id partner
    federation_identity: str | None = None  # --federation-identity: the MI managed_identity_federation rows use
    baseline: str | None = None  # --baseline RUN_ID: the run the reports compare with (default: the journal's)
    workers: int | None = None  # --workers: processes (1: this one alone; None: from the cores and the run's size)

    def recorded(self) -> dict[str, Any]:
        """The options as recorded in the journal (no secret is ever an option)."""
        data = asdict(self)
        data["retry"] = asdict(self.retry)
        return data


def endpoints_resolver(options: RunOptions) -> Callable[[Identity], Endpoints]:
    """Per-identity endpoints (rows may name their own cloud); explicit options win."""
    cache: dict[Cloud, Endpoints] = {}

    def resolve(identity: Identity) -> Endpoints:
        cloud = identity.cloud
        found = cache.get(cloud)
        if found is None:
            try:
                found = endpoints_for(cloud, authority_host=options.authority_host, arm_endpoint=options.arm_endpoint)
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
            cache[cloud] = found
        return found

    return resolve

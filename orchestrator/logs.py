"""Log lines that say whose they are: every record logged while an identity is reconciled names it.

The linker runs many identities concurrently on one event loop; each runs in its own asyncio task, so a context
variable set at the start of its reconcile is seen by every log call made for it — ours and the Azure SDK's
(its HTTP logging policy redacts headers and bodies). `--debug` installs `IdentityFilter` on the handler.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from .models import Identity

_current: ContextVar[str] = ContextVar("pal_log_identity", default="-")


def log_as(identity: Identity) -> None:
    """From here on in this task, log records name `identity` (customer, tenant, client ID, row)."""
    _current.set(f"{identity.customer} tenant={identity.tenant_id} client={identity.client_id} "
                 f"row={identity.location}")


class IdentityFilter(logging.Filter):
    """Adds `%(identity)s` to every record (a dash outside an identity's reconcile)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.identity = _current.get()
        return True


def configure_logging(debug: bool) -> None:
    """--debug shows our steps and the SDK's redacting HTTP log, each line naming the identity it belongs to;
    never the network trace that leaks secrets. The CLI and every worker process configure it alike."""
    root = logging.getLogger()
    if not any(getattr(h, "pal_orchestrator", False) for h in root.handlers):  # once per process
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(IdentityFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(identity)s]: %(message)s"))
        handler.pal_orchestrator = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("azure").setLevel(logging.INFO if debug else logging.ERROR)
    logging.getLogger("msal").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)

"""`federation-check`: what the multi-tenant app's federated credential must hold, read from the managed identity's
own token, so the one-time set-up can be verified before a run (docs/federation.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..models import Cloud
from .app import _errors, app, out
from .options import CaOpt, CloudOpt, FederationOpt, Output, OutputOpt

#: The help's examples, in the form of app.examples() (kept as written: click's \b).
_EXAMPLES = "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in (
    "pal-orchestrator federation-check --federation-identity MI_CLIENT_ID --client-id APP_ID",
    "pal-orchestrator federation-check --federation-identity MI_CLIENT_ID --client-id APP_ID --output json",
))


@app.command("federation-check", epilog=_EXAMPLES)
def federation_check(
    federation_identity: FederationOpt = None,
    client_id: Annotated[
        str, typer.Option("--client-id", metavar="APP", help="Application (client) ID of the multi-tenant app.")
    ] = "",
    cloud: CloudOpt = Cloud.PUBLIC,
    ca_bundle: CaOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Print the issuer, subject and audience the app's federated credential must trust (never the token)."""
    from ..federation import federation_check as check

    if not federation_identity or not client_id:
        raise typer.BadParameter("give --federation-identity CLIENT_ID and --client-id APP")
    with _errors():
        mine = check(federation_identity, cloud=cloud, ca_bundle=str(ca_bundle) if ca_bundle else None)
    fields = {"issuer": mine.issuer, "subject": mine.subject, "audience": mine.audience}
    if output is Output.json:
        out.print_json(json.dumps({"client_id": client_id, "federation_identity": federation_identity, **fields}))
        return
    out.print(f"The app {client_id} must hold a federated credential with:", markup=False)
    for name, value in fields.items():
        out.print(f"  {name:<9} {value}", markup=False)
    params = json.dumps({"name": "pal-orchestrator", **{k: v for k, v in fields.items() if k != "audience"},
                         "audiences": [mine.audience]})
    out.print(f"Create it with:\n  az ad app federated-credential create --id {client_id} --parameters '{params}'",
              markup=False)

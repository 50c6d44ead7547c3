"""What a run's identities need prepared (ARM endpoints, a vault, federation), told apart without the Azure SDKs.

The parent of worker processes computes `Needs` and hands it to every worker, so this module, like the rest of
the parent's path, imports no SDK: a parent that only dispatches stays ~45 MB smaller (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .inventory.vaults import split_secret_uri
from .models import CredentialType, Identity
from .run_options import RunOptions, endpoints_resolver


def is_federation(identity: Identity) -> bool:
    return identity.credential_type is CredentialType.MANAGED_IDENTITY_FEDERATION

def needs_vault(identity: Identity) -> bool:
    return identity.credential_type not in (CredentialType.MANAGED_IDENTITY, CredentialType.FEDERATED,
                                            CredentialType.MANAGED_IDENTITY_FEDERATION)


@dataclass(frozen=True, slots=True)
class Needs:
    """What a session prepares for a set of identities; small, so a worker gets it without the inventory."""

    arm_endpoints: tuple[str, ...]
    vault: bool
    federation: bool
    samples: tuple[Identity, ...]  # the first identity per vault and per federation identity: what warm-up reads

    @classmethod
    def of(cls, identities: Iterable[Identity], options: RunOptions) -> Needs:
        resolve = endpoints_resolver(options)
        arm: set[str] = set()
        vault = federation = False
        samples: dict[tuple[str, str], Identity] = {}
        for identity in identities:
            arm.add(resolve(identity).arm_endpoint)
            if is_federation(identity):
                federation = True
                if identity.federation_identity:
                    samples.setdefault(("mi", f"{identity.federation_identity.lower()} {identity.cloud}"), identity)
            elif needs_vault(identity):
                vault = True
                if identity.secret_uri is not None:
                    samples.setdefault(("vault", split_secret_uri(identity.secret_uri)[0]), identity)
        return cls(tuple(sorted(arm)), vault, federation, tuple(samples.values()))

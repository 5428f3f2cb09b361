"""Checking a package's sidecar signatures over reconcile's statement (layouts 2 and 3), for
mirrors where an ed25519 key counts: the statement is rebuilt from the metadata fetched, so a
signature vouches only for the tarball, DAG hash and dependencies the mirror really serves."""

from __future__ import annotations

from reconcile.errors import NotFoundError
from reconcile.redact import mask_credentials
from reconcile.spack.spec import SpecNode
from reconcile.transport.base import Transport
from reconcile.trust.policy import Opened, TrustPolicy, Verified
from reconcile.trust.sidecar import parse_sidecar
from reconcile.trust.statement import statement_for


def verify_package(
    trust: TrustPolicy,
    transport: Transport,
    *,
    opened: Opened,
    node: SpecNode,
    tarball_sha256: str,
    tarball_size: int,
    sidecar_url: str,
    what: str,
    mirror: str | None,
) -> Verified:
    """The package's signers under the policy: the envelope's (if GnuPG accepted it) and
    those of its sidecar over the statement of ``node`` with that tarball."""
    try:
        statement = statement_for(node, tarball_sha256=tarball_sha256, tarball_size=tarball_size)
    except ValueError as exc:
        statement, problem = b"", f"no statement can be made for this package: {exc}"
        return trust.verify_statement(
            statement, [], opened=opened, what=what, mirror=mirror, problems=[problem]
        )
    shown = mask_credentials(sidecar_url)
    problems: list[str] = []
    signatures: list[tuple[str, bytes]] = []
    try:
        sidecar = parse_sidecar(transport.read_bytes(sidecar_url))
    except NotFoundError:
        problems.append(f"no sidecar signatures: {shown} does not exist")
    except ValueError as exc:
        problems.append(f"sidecar {shown} is not one reconcile reads: {exc}")
    else:
        signatures = sidecar.detached()
        if sidecar.statement.encode() != statement:
            problems.append(
                f"sidecar {shown} says it signs '{sidecar.statement[:300]}', but the mirror's "
                f"metadata makes '{statement.decode()}'"
            )
    return trust.verify_statement(
        statement, signatures, opened=opened, what=what, mirror=mirror, problems=problems
    )

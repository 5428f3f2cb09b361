"""No gpg-agent outlives reconcile's use of it: verification starts none, signing and key
listing stop the one they started, and an agent that was already running is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY, SIGNED_CACHE
from throwaway_gpg import Signer, make_signer

from reconcile.trust.gnupg import agent_running, isolated_home, run_gpg, stop_agent
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.secret_keys import list_signing_keys
from reconcile.trust.sign import GpgSigner
from reconcile.trust.signing_home import SigningHome


@pytest.fixture
def signer() -> Iterator[Signer]:
    with isolated_home() as home:
        made = make_signer(home, "Agent Test <agent@example.invalid>")
        stop_agent(home)  # making the key started one
        assert not agent_running(home)
        yield made


def test_verification_starts_no_agent() -> None:
    signed = next((SIGNED_CACHE / "build_cache").glob("*.spec.json.sig")).read_bytes()
    with TrustPolicy.gpg({FIXTURE_FPR: FIXTURE_KEY.read_bytes()}) as policy:
        policy.verify_clearsigned(signed, what="spec")
        home = policy._schemes["gpg"]._home
        assert home is not None and not agent_running(home)


def test_a_signer_stops_the_agent_it_started(signer: Signer) -> None:
    gpg_signer = GpgSigner(gnupghome=signer.home, fingerprint=signer.fingerprint)
    gpg_signer.clearsign(b"spec\n")
    assert agent_running(signer.home)
    gpg_signer.close()
    assert not agent_running(signer.home)


def test_a_signer_that_is_dropped_stops_its_agent(signer: Signer) -> None:
    GpgSigner(gnupghome=signer.home, fingerprint=signer.fingerprint).clearsign(b"spec\n")
    assert not agent_running(signer.home)  # collected at once: its lease ended


def test_an_agent_that_was_already_running_is_left_alone(signer: Signer) -> None:
    started = run_gpg(signer.home, ["--list-secret-keys"], agent=True)  # as the user's own
    assert started.returncode == 0 and agent_running(signer.home)
    gpg_signer = GpgSigner(gnupghome=signer.home, fingerprint=signer.fingerprint)
    gpg_signer.clearsign(b"spec\n")
    gpg_signer.close()
    list_signing_keys(SigningHome(path=signer.home, origin="--home"))
    assert agent_running(signer.home)
    stop_agent(signer.home)


def test_listing_secret_keys_stops_the_agent_it_started(signer: Signer) -> None:
    keys = list_signing_keys(SigningHome(path=signer.home, origin="--home"))
    assert [key.fingerprint for key in keys] == [signer.fingerprint]
    assert not agent_running(signer.home)


def test_gpg_without_an_agent_cannot_use_secret_keys(signer: Signer) -> None:
    """What --no-autostart guarantees: a command that would need the agent fails instead of
    starting one."""
    signed = run_gpg(signer.home, ["--local-user", signer.fingerprint, "--clearsign"], stdin=b"x")
    assert signed.returncode != 0
    assert not agent_running(signer.home)


def test_agent_running_is_false_for_a_home_without_one(tmp_path: Path) -> None:
    assert not agent_running(tmp_path)

"""Many documents, one gpg: a batch accepts a document only as a run of its own would, and
never lets one document's result stand for another's."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FIXTURE_FPR, FIXTURE_KEY, GREETLIB_HASH, SIGNED_CACHE, UNSIGNED_CACHE
from throwaway_gpg import Signer, make_signer

from reconcile.errors import VerificationError
from reconcile.trust.gnupg import isolated_home
from reconcile.trust.gpg_batch import GroupRunner, split_by_file
from reconcile.trust.policy import TrustPolicy
from reconcile.trust.signers import Signer as Accepted
from reconcile.trust.verify import GpgVerifier

WHAT = "spec from mirror 'team'"
SPECS = sorted((SIGNED_CACHE / "build_cache").glob("*.spec.json.sig"))


def unsigned(signed: Path) -> bytes:
    return (UNSIGNED_CACHE / "build_cache" / signed.name.removesuffix(".sig")).read_bytes()


@pytest.fixture(scope="module")
def keyring() -> Iterator[Path]:
    with isolated_home() as home:
        yield home


@pytest.fixture(scope="module")
def other(keyring: Path) -> Signer:
    """Pinned too: gpg accepts its signatures (exit 0), so only the judgement refuses the
    ones made with SHA-1 or doubled."""
    return make_signer(keyring, "Other Signer <other@example.invalid>")


@pytest.fixture(scope="module")
def second(keyring: Path) -> Signer:
    return make_signer(keyring, "Second <second@example.invalid>")


@pytest.fixture(scope="module")
def stranger(keyring: Path) -> Signer:
    return make_signer(keyring, "Stranger <stranger@example.invalid>")


@pytest.fixture(scope="module")
def verifier(other: Signer, second: Signer) -> Iterator[GpgVerifier]:
    pinned = {
        FIXTURE_FPR: FIXTURE_KEY.read_bytes(),
        other.fingerprint: other.public_key(),
        second.fingerprint: second.public_key(),
    }
    with TrustPolicy.gpg(pinned) as policy:
        scheme = policy._scheme("gpg")
        assert isinstance(scheme, GpgVerifier)
        yield scheme


def hostile_documents(other: Signer, second: Signer, stranger: Signer) -> dict[str, bytes]:
    """Documents a run of their own refuses (tests/trust/test_gpg_verify.py has each one)."""
    good = SPECS[0].read_bytes()
    next_spec = SPECS[1].read_bytes()
    header = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
    return {
        "tampered text": good.replace(b'"name"', b'"nome"', 1),
        "unpinned signer": stranger.clearsign(unsigned(SPECS[0])),
        "two signatures": other.clearsign(b"x\n", extra=("--local-user", stranger.fingerprint)),
        "two pinned signatures": other.clearsign(
            b"x\n", extra=("--local-user", second.fingerprint)
        ),
        "sha1": other.clearsign(b"weak\n", extra=("--digest-algo", "SHA1")),
        "header only": header + unsigned(SPECS[0]),
        "second signed block": good + next_spec,
        "unsigned second block": good + header + b"evil\n",
        "garbage after the header": header + b"\x00\xff" * 100,
    }


def test_a_batch_accepts_good_documents_with_their_own_text(verifier: GpgVerifier) -> None:
    documents = [spec.read_bytes() for spec in SPECS]
    opened = verifier._open_many(documents)
    assert len(opened) == len(SPECS) >= 3
    for spec, result in zip(SPECS, opened, strict=True):
        assert result is not None
        payload, signer = result
        assert payload == unsigned(spec) + b"\n"  # this document's text, not a neighbour's
        assert signer.identity == FIXTURE_FPR


@pytest.mark.parametrize("name", range(9))
def test_a_batch_never_accepts_what_a_run_of_its_own_refuses(
    verifier: GpgVerifier, other: Signer, second: Signer, stranger: Signer, name: int
) -> None:
    hostile = list(hostile_documents(other, second, stranger).values())[name]
    with pytest.raises(VerificationError):
        verifier.open(hostile, what=WHAT)  # alone: refused
    good = [spec.read_bytes() for spec in SPECS]
    opened = verifier._open_many([good[0], hostile, good[1]])
    assert opened[1] is None  # decided alone again, which refuses it
    for document, result in zip((good[0], good[1]), (opened[0], opened[2]), strict=True):
        # a failure anywhere in the batch may send the good ones back too (never accept
        # the wrong text): either way no result is another document's
        if result is not None:
            assert document.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
            assert result[0] in document


def test_threads_opening_at_once_get_the_same_outcome_as_alone(
    verifier: GpgVerifier,
    other: Signer,
    second: Signer,
    stranger: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile = hostile_documents(other, second, stranger)
    documents = [spec.read_bytes() for spec in SPECS] * 4 + list(hostile.values())
    one_by_one = [_outcome(verifier, document) for document in documents]
    batches: list[int] = []
    real = verifier._open_many

    def counting(items: Sequence[tuple[bytes, str]]) -> list[tuple[bytes, Accepted] | None]:
        batches.append(len(items))
        return real([document for document, _ in items])

    def alone(item: tuple[bytes, str]) -> tuple[bytes, Accepted]:
        return verifier._open_one(*item)

    monkeypatch.setattr(verifier, "_group", GroupRunner(counting, alone))
    start = threading.Barrier(len(documents))

    def together(document: bytes) -> tuple[str, object]:
        start.wait()
        return _outcome(verifier, document)

    with ThreadPoolExecutor(len(documents)) as workers:
        assert list(workers.map(together, documents)) == one_by_one
    assert batches and max(batches) > 1  # documents did share a gpg process


def _outcome(verifier: GpgVerifier, document: bytes) -> tuple[str, object]:
    try:
        payload, signer = verifier.open(document, what=WHAT)
    except VerificationError as exc:
        return ("refused", exc.message)
    return ("accepted", (payload, signer.identity))


# --- splitting the status stream by file -----------------------------------------------------

S = "[GNUPG:] "


def test_the_status_stream_splits_by_file() -> None:
    stream = (
        f"{S}FILE_START 3 /h/d0.asc\n{S}GOODSIG A x\n{S}FILE_DONE\n"
        f"{S}FILE_START 3 /h/d1.asc\n{S}BADSIG B y\n{S}FILE_DONE\n"
    )
    assert split_by_file(stream, ["/h/d0.asc", "/h/d1.asc"]) == [
        f"{S}GOODSIG A x",
        f"{S}BADSIG B y",
    ]


@pytest.mark.parametrize(
    "stream",
    [
        # a file missing, files in another order, a name that is not ours
        f"{S}FILE_START 3 /h/d0.asc\n{S}FILE_DONE\n",
        f"{S}FILE_START 3 /h/d1.asc\n{S}FILE_DONE\n{S}FILE_START 3 /h/d0.asc\n{S}FILE_DONE\n",
        f"{S}FILE_START 3 /h/d0.asc\n{S}FILE_DONE\n{S}FILE_START 3 /h/dX.asc\n{S}FILE_DONE\n",
        # a status line outside a file's section, a section left open, one opened twice
        f"{S}GOODSIG A x\n{S}FILE_START 3 /h/d0.asc\n{S}FILE_DONE\n"
        f"{S}FILE_START 3 /h/d1.asc\n{S}FILE_DONE\n",
        f"{S}FILE_START 3 /h/d0.asc\n{S}FILE_DONE\n{S}FILE_START 3 /h/d1.asc\n",
        f"{S}FILE_START 3 /h/d0.asc\n{S}FILE_START 3 /h/d1.asc\n{S}FILE_DONE\n{S}FILE_DONE\n",
        f"{S}FILE_DONE\n",
    ],
)
def test_a_stream_that_does_not_split_cleanly_is_not_used(stream: str) -> None:
    assert split_by_file(stream, ["/h/d0.asc", "/h/d1.asc"]) is None


def test_a_batch_that_fails_leaves_every_document_to_a_run_of_its_own() -> None:
    def broken(_: Sequence[str]) -> list[str | None]:
        raise OSError("gpg could not start")

    def alone(item: str) -> str:
        return f"{item} alone"

    runner: GroupRunner[str, str] = GroupRunner(broken, alone)
    assert runner.submit("a") == "a alone"
    items = [str(n) for n in range(6)]
    with ThreadPoolExecutor(6) as workers:
        assert list(workers.map(runner.submit, items)) == [f"{n} alone" for n in items]


def test_greetlib_spec_is_among_the_documents() -> None:
    assert any(GREETLIB_HASH in spec.name for spec in SPECS)

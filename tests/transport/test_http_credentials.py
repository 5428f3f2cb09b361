"""Credentials against nginx's basic auth: where they come from, that they only travel over
https, and that a password never shows up in any error, hint, repr or traceback."""

from __future__ import annotations

import traceback
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SIGNED_CACHE
from http_mirror_support import INDEX, fresh, served_signed_cache, transport
from nginx_harness import NginxServer

from reconcile.errors import MirrorUnreachableError, ReconcileError, TransportError
from reconcile.transport.credentials import (
    mirror_env_prefix,
    resolve_credentials,
    strip_credentials,
)
from reconcile.transport.http import HttpTransport
from reconcile.transport.registry import MirrorEndpoint, TransportPool

WRONG = "Wr0ng-but-S3cret"


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with served_signed_cache(tmp_path_factory.mktemp("http-auth")) as server:
        yield server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with served_signed_cache(tmp_path_factory.mktemp("https-auth"), tls=True) as server:
        yield server


@pytest.fixture
def http_server(plain_server: NginxServer) -> NginxServer:
    return fresh(plain_server)


@pytest.fixture
def https_server(tls_server: NginxServer) -> NginxServer:
    return fresh(tls_server)


def with_userinfo(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return parts._replace(netloc=f"{quoted}@{parts.netloc}").geturl()


def every_text_of(error: BaseException) -> str:
    """All that could reach a person or a log: message, hint, diagnostics, repr, and the
    formatted traceback with its chained exceptions."""
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, ReconcileError):
        texts += [error.message, error.hint or "", error.diagnostics()]
    return "\n".join(texts)


def env_for(server: NginxServer, **values: str) -> dict[str, str]:
    env = {f"{mirror_env_prefix('team')}{key.upper()}": value for key, value in values.items()}
    if server.tls:
        env["RECONCILE_CA_BUNDLE"] = str(server.ca_bundle)
    return env


# --- plain http: credentials are refused before anything is sent ---------------------


def test_userinfo_over_plain_http_is_refused(http_server: NginxServer) -> None:
    secret = http_server.auth_password
    url = with_userinfo(http_server.url, http_server.auth_user, secret)
    with pytest.raises(TransportError) as caught:
        transport(url)
    text = every_text_of(caught.value)
    assert "clear text over plain http" in caught.value.message
    assert "https://" in (caught.value.hint or "")
    assert secret not in text and "***" in text
    assert http_server.access_log_entries() == []  # nothing was sent


def test_environment_credentials_for_a_plain_http_mirror_are_refused(
    http_server: NginxServer,
) -> None:
    env = env_for(http_server, username=http_server.auth_user, password=http_server.auth_password)
    with pytest.raises(TransportError) as caught:
        transport(http_server.url, environ=env)
    assert "RECONCILE_MIRROR_TEAM_USERNAME" in caught.value.message
    assert http_server.auth_password not in every_text_of(caught.value)


def test_netrc_is_not_used_over_plain_http(http_server: NginxServer, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        f"machine 127.0.0.1 login {http_server.auth_user} password {http_server.auth_password}\n"
    )
    netrc.chmod(0o600)
    http = transport(http_server.url, environ={"NETRC": str(netrc)})
    with pytest.raises(TransportError) as caught:
        http.read_bytes(f"{http_server.url}/auth/{INDEX}")
    assert "401" in caught.value.message
    assert "none are sent over plain http" in caught.value.message
    (entry,) = http_server.access_log_entries()
    assert entry["status"] == 401 and entry["remote_user"] is None


def test_missing_credentials_say_how_to_give_them(http_server: NginxServer) -> None:
    with pytest.raises(TransportError) as caught:
        transport(http_server.url).read_bytes(f"{http_server.url}/auth/{INDEX}")
    assert "access denied (HTTP 401 Unauthorized)" in caught.value.message
    hint = caught.value.hint or ""
    assert "RECONCILE_MIRROR_TEAM_USERNAME" in hint and "https://" in hint
    assert len(http_server.access_log_entries()) == 1  # 401 is not retried


# --- https, with nginx's throwaway certificate --------------------------------------


def test_userinfo_over_https_is_sent_as_basic_auth(https_server: NginxServer) -> None:
    url = with_userinfo(https_server.url, https_server.auth_user, https_server.auth_password)
    http = transport(url, environ=env_for(https_server))
    assert https_server.auth_password not in repr(http)
    data = http.read_bytes(f"{url}/auth/{INDEX}")
    assert data == (SIGNED_CACHE / INDEX).read_bytes()
    (entry,) = https_server.access_log_entries()
    assert (entry["status"], entry["remote_user"]) == (200, https_server.auth_user)
    # the request line never carries the userinfo
    assert "@" not in entry["request"]


def test_environment_credentials_work(https_server: NginxServer, tmp_path: Path) -> None:
    env = env_for(
        https_server, username=https_server.auth_user, password=https_server.auth_password
    )
    http = transport(https_server.url, environ=env)
    dest = tmp_path / "index.json"
    http.download(f"{https_server.url}/auth/{INDEX}", dest)
    assert dest.read_bytes() == (SIGNED_CACHE / INDEX).read_bytes()
    assert http.size(f"{https_server.url}/auth/{INDEX}") == dest.stat().st_size
    assert {e["remote_user"] for e in https_server.access_log_entries()} == {https_server.auth_user}


def test_os_environment_is_read_by_default(
    https_server: NginxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILE_MIRROR_TEAM_USERNAME", https_server.auth_user)
    monkeypatch.setenv("RECONCILE_MIRROR_TEAM_PASSWORD", https_server.auth_password)
    monkeypatch.setenv("RECONCILE_CA_BUNDLE", str(https_server.ca_bundle))
    mirror = MirrorEndpoint(name="team", url=https_server.url)
    with TransportPool([mirror]) as pool:
        assert pool.read_bytes(f"{https_server.url}/auth/{INDEX}").startswith(b"{")


def test_netrc_works_over_https(https_server: NginxServer, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        f"machine 127.0.0.1 login {https_server.auth_user} password {https_server.auth_password}\n"
    )
    netrc.chmod(0o600)
    http = transport(https_server.url, environ={**env_for(https_server), "NETRC": str(netrc)})
    assert http.read_bytes(f"{https_server.url}/auth/{INDEX}").startswith(b"{")
    assert https_server.access_log_entries()[0]["remote_user"] == https_server.auth_user


def test_wrong_password_is_a_clear_401_that_never_shows_it(https_server: NginxServer) -> None:
    env = env_for(https_server, username=https_server.auth_user, password=WRONG)
    http = transport(https_server.url, environ=env)
    with pytest.raises(TransportError) as caught:
        http.read_bytes(f"{https_server.url}/auth/{INDEX}")
    error = caught.value
    assert "access denied (HTTP 401 Unauthorized)" in error.message
    assert "RECONCILE_MIRROR_TEAM_USERNAME" in error.message  # where they came from
    assert "were refused" in error.message
    assert WRONG not in every_text_of(error)
    assert len(https_server.access_log_entries()) == 1


def test_wrong_password_in_the_url_never_shows_it(https_server: NginxServer) -> None:
    url = with_userinfo(https_server.url, https_server.auth_user, WRONG)
    http = transport(url, environ=env_for(https_server))
    for operation in (
        lambda: http.read_bytes(f"{url}/auth/{INDEX}"),
        lambda: http.size(f"{url}/auth/{INDEX}"),
        lambda: http.read_bytes(f"{url}/auth/build_cache/missing"),
    ):
        with pytest.raises(TransportError) as caught:
            operation()
        text = every_text_of(caught.value)
        assert WRONG not in text
        assert f"{https_server.auth_user}:***@" in text


def test_bearer_token_is_sent(https_server: NginxServer) -> None:
    # nginx's basic auth cannot check a bearer token: it answers 401, naming where the
    # token came from, and never the token
    token = "tok-" + "9" * 20
    http = transport(https_server.url, environ=env_for(https_server, token=token))
    with pytest.raises(TransportError) as caught:
        http.read_bytes(f"{https_server.url}/auth/{INDEX}")
    assert "RECONCILE_MIRROR_TEAM_TOKEN" in caught.value.message
    assert token not in every_text_of(caught.value)
    # public locations of the same mirror ignore the header
    assert http.read_bytes(f"{https_server.url}/{INDEX}").startswith(b"{")


def test_unknown_certificate_is_unreachable_with_a_ca_hint(https_server: NginxServer) -> None:
    http = transport(https_server.url, environ={})  # system CAs: the self-signed one is unknown
    with pytest.raises(MirrorUnreachableError) as caught:
        http.read_bytes(f"{https_server.url}/{INDEX}")
    assert "certificate verification failed" in caught.value.message
    assert "RECONCILE_CA_BUNDLE" in (caught.value.hint or "")
    assert https_server.access_log_entries() == []


def test_requests_ca_bundle_is_honoured(https_server: NginxServer) -> None:
    http = transport(https_server.url, environ={"REQUESTS_CA_BUNDLE": str(https_server.ca_bundle)})
    assert http.read_bytes(f"{https_server.url}/{INDEX}").startswith(b"{")


def test_missing_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TransportError) as caught:
        transport("https://127.0.0.1:1", environ={"RECONCILE_CA_BUNDLE": str(tmp_path / "x")})
    assert "no such CA bundle" in caught.value.message


# --- where credentials come from (no server needed) ----------------------------------


def test_mirror_names_become_environment_prefixes() -> None:
    assert mirror_env_prefix("team") == "RECONCILE_MIRROR_TEAM_"
    assert mirror_env_prefix("spack-public.v2") == "RECONCILE_MIRROR_SPACK_PUBLIC_V2_"


def test_precedence_url_then_environment_then_netrc(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine mirror.example login n password from-netrc\n")
    netrc.chmod(0o600)
    env = {
        "NETRC": str(netrc),
        "RECONCILE_MIRROR_TEAM_USERNAME": "e",
        "RECONCILE_MIRROR_TEAM_PASSWORD": "from-env",
    }
    from_url = resolve_credentials("https://u:from-url@mirror.example/x", "team", environ=env)
    from_env = resolve_credentials("https://mirror.example/x", "team", environ=env)
    from_netrc = resolve_credentials("https://mirror.example/x", "other", environ=env)
    nothing = resolve_credentials("https://elsewhere.example/x", "other", environ=env)
    assert from_url is not None and from_url.secret == "from-url"
    assert from_env is not None and from_env.secret == "from-env"
    assert from_netrc is not None and from_netrc.secret == "from-netrc"
    assert nothing is None
    for found in (from_url, from_env, from_netrc):
        assert found.secret not in repr(found)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"USERNAME": "u"}, "RECONCILE_MIRROR_TEAM_PASSWORD is not"),
        ({"PASSWORD": "p4ss"}, "RECONCILE_MIRROR_TEAM_USERNAME is not"),
        ({"TOKEN": "t0k", "USERNAME": "u", "PASSWORD": "p4ss"}, "both"),
    ],
)
def test_incomplete_or_contradictory_environment(values: dict[str, str], expected: str) -> None:
    env = {f"RECONCILE_MIRROR_TEAM_{key}": value for key, value in values.items()}
    with pytest.raises(TransportError) as caught:
        resolve_credentials("https://mirror.example/x", "team", environ=env)
    assert expected in caught.value.message
    for secret in ("p4ss", "t0k"):
        assert secret not in every_text_of(caught.value)


def test_broken_netrc_never_quotes_its_contents(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine mirror.example login u password hunter2 bogus-token\n")
    netrc.chmod(0o600)
    with pytest.raises(TransportError) as caught:
        resolve_credentials("https://mirror.example/x", None, environ={"NETRC": str(netrc)})
    assert "syntax error on line" in caught.value.message
    text = every_text_of(caught.value)
    assert "hunter2" not in text and "bogus-token" not in text


def test_strip_credentials_keeps_everything_else() -> None:
    assert (
        strip_credentials("https://u:p%40ss@host.example:8443/a/b?q=1")
        == "https://host.example:8443/a/b?q=1"
    )
    assert strip_credentials("https://[::1]:8443/a") == "https://[::1]:8443/a"
    assert strip_credentials("https://u:p@[::1]/a") == "https://[::1]/a"


def test_credentials_are_not_sent_to_another_origin(https_server: NginxServer) -> None:
    # a URL outside the mirror's origin (another port here) gets no Authorization header
    env = env_for(
        https_server, username=https_server.auth_user, password=https_server.auth_password
    )
    http = HttpTransport(
        base_url="https://127.0.0.1:1/elsewhere",
        mirror_name="team",
        environ=env,
        attempts=1,
        connect_timeout=0.5,
    )
    with pytest.raises(TransportError) as caught:
        http.read_bytes(f"{https_server.url}/auth/{INDEX}")
    assert "none were found" in caught.value.message
    assert https_server.access_log_entries()[0]["remote_user"] is None

"""A real S3 API on 127.0.0.1 for tests: moto's threaded server, plus a proxy that breaks
response streams on purpose and endpoints that never answer.

Usage::

    with moto_s3(tmp_path) as s3:
        s3.upload_tree(SIGNED_CACHE, "team-cache", "spack")
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)  # or env={**os.environ, **s3.env} for a child
        S3Transport(endpoint_url=s3.endpoint_url).read_bytes(s3.url("team-cache", "spack/..."))

moto keeps its buckets in process-wide state shared by every server in the process: use
bucket names unique to the test (``stop()`` deletes the buckets this harness created).
``s3.env`` isolates boto3 from the machine's ``~/.aws`` and never reaches the network
outside 127.0.0.1 (instance metadata lookups are disabled).
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY_ID = "AKIAMOTOHARNESS00000"
SECRET_ACCESS_KEY = "moto-harness-secret-never-shown"  # a fake, for a fake server
REGION = "us-east-1"
PROFILE = "moto"  # a profile written to the harness's credentials file


class MotoS3:
    """One running moto server and the AWS configuration that points at it."""

    def __init__(self, tmp: Path) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.config_file = tmp / "aws-config"
        self.credentials_file = tmp / "aws-credentials"
        tmp.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(f"[profile {PROFILE}]\nregion = {REGION}\n")
        self.credentials_file.write_text(
            f"[{PROFILE}]\naws_access_key_id = {ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {SECRET_ACCESS_KEY}\n"
        )
        self._buckets: list[str] = []
        self._stopped = False

    @property
    def env(self) -> dict[str, str]:
        """Environment for boto3 (in this process via monkeypatch, or a child process)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str = "s3") -> Any:
        """A boto3 client with the harness's credentials (independent of the environment)."""
        session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )
        return session.client(service, endpoint_url=self.endpoint_url)

    def url(self, bucket: str, key: str = "") -> str:
        return f"s3://{bucket}/{key.strip('/')}" if key else f"s3://{bucket}"

    def create_bucket(self, bucket: str) -> None:
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        finally:
            client.close()
        self._buckets.append(bucket)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        client = self.client()
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data)
        finally:
            client.close()

    def upload_tree(self, local_dir: Path, bucket: str, prefix: str = "") -> list[str]:
        """Every file under ``local_dir`` to ``bucket`` at ``prefix/<same relative path>``
        (the bucket is created if needed; symlinks are uploaded as their targets' content).
        Returns the keys written."""
        if bucket not in self._buckets:
            self.create_bucket(bucket)
        keys = []
        client = self.client()
        try:
            for path in sorted(local_dir.rglob("*")):
                if not path.is_file():
                    continue
                relative = path.relative_to(local_dir).as_posix()
                key = f"{prefix.strip('/')}/{relative}" if prefix.strip("/") else relative
                client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
                keys.append(key)
        finally:
            client.close()
        return keys

    def create_reader(self, user: str, bucket: str | None) -> tuple[str, str]:
        """An IAM user whose key may GetObject in ``bucket`` (None: may do nothing at all);
        returns (access key id, secret). Only enforced inside ``authentication_required()``."""
        iam = self.client("iam")
        try:
            iam.create_user(UserName=user)
            if bucket is not None:
                policy = {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject"],
                            "Resource": f"arn:aws:s3:::{bucket}/*",
                        }
                    ],
                }
                iam.put_user_policy(
                    UserName=user, PolicyName="read", PolicyDocument=json.dumps(policy)
                )
            key = iam.create_access_key(UserName=user)["AccessKey"]
        finally:
            iam.close()
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    @contextmanager
    def authentication_required(self) -> Iterator[None]:
        """moto checks signatures and IAM policies inside this block (process-wide switch)."""
        self._set_auth_free_requests("0")
        try:
            yield
        finally:
            self._set_auth_free_requests("inf")

    def _set_auth_free_requests(self, count: str) -> None:
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with suppress(Exception):
            self._delete_buckets()
        self._server.stop()

    def _delete_buckets(self) -> None:
        client = self.client()
        try:
            for bucket in self._buckets:
                listing = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for page in listing:
                    for item in page.get("Contents", []):
                        client.delete_object(Bucket=bucket, Key=item["Key"])
                client.delete_bucket(Bucket=bucket)
        finally:
            client.close()


@contextmanager
def moto_s3(tmp: Path) -> Iterator[MotoS3]:
    """A moto S3 server on 127.0.0.1 (a free port); AWS config files are written to ``tmp``."""
    server = MotoS3(tmp)
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """An endpoint URL that accepts connections and never answers (a hung service)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


class BreakingProxy:
    """A TCP proxy in front of ``upstream`` that cuts the next ``cuts`` responses larger than
    ``cut_after`` bytes right after that many bytes, to break a body stream mid-transfer.

    moto closes the connection after each response, so one connection carries one response.
    ``on_cut`` runs before the connection is cut (for example to change the object).
    """

    def __init__(self, upstream_url: str) -> None:
        host, _, port = upstream_url.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)  # so that close() stops the accepting thread promptly
        self._closing = threading.Event()
        self.endpoint_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.cut_after = 0
        self.cuts_left = 0
        self.cuts_done = 0
        self.on_cut: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def arm(
        self, *, cut_after: int, cuts: int = 1, on_cut: Callable[[], None] | None = None
    ) -> None:
        with self._lock:
            self.cut_after, self.cuts_left, self.on_cut = cut_after, cuts, on_cut

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(30)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self._upstream, timeout=30) as upstream:
            forward = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
            forward.start()
            self._pump_back(upstream, client)
            with suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
            forward.join(timeout=5)

    def _pump_back(self, upstream: socket.socket, client: socket.socket) -> None:
        sent = 0
        while True:
            try:
                data = upstream.recv(65536)
            except OSError:
                return
            if not data:
                return
            hook = None
            with self._lock:
                cutting = self.cuts_left > 0 and sent + len(data) > self.cut_after
                if cutting:
                    self.cuts_left -= 1
                    self.cuts_done += 1
                    hook = self.on_cut
            if cutting:
                with suppress(OSError):
                    client.sendall(data[: self.cut_after - sent])
                if hook is not None:
                    hook()
                return
            try:
                client.sendall(data)
            except OSError:
                return
            sent += len(data)

    def close(self) -> None:
        self._closing.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


@contextmanager
def breaking_proxy(upstream_url: str) -> Iterator[BreakingProxy]:
    proxy = BreakingProxy(upstream_url)
    try:
        yield proxy
    finally:
        proxy.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    while True:
        try:
            data = source.recv(65536)
            if not data:
                return
            target.sendall(data)
        except OSError:
            return

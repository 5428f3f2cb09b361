"""boto3/botocore exceptions -> reconcile's transport errors, at the edge of the S3 transport.

Messages name the ``s3://`` URL and the endpoint; they never carry a secret key (botocore's
own messages hold URLs and error codes, the service's messages hold no secrets either).
"""

from __future__ import annotations

from reconcile.errors import MirrorUnreachableError, NotFoundError, TransportError

# Error codes S3 (and S3-compatible services) answer when the credentials are the problem.
CREDENTIAL_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
    }
)
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
ENDPOINT_HINT = "expected the mirror's endpoint_url to look like https://s3.example.org:9000"
TIMEOUT_HINT = (
    "check the mirror's endpoint_url and that the service is running; slow services can get "
    "longer timeouts with RECONCILE_S3_CONNECT_TIMEOUT / RECONCILE_S3_READ_TIMEOUT (seconds)"
)


def credentials_hint(profile: str | None) -> str:
    if profile is not None:
        return (
            f"check that AWS profile {profile!r} holds valid credentials that may read this "
            "bucket (aws configure --profile ...)"
        )
    return (
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or give the mirror "
        "a `profile` whose credentials may read this bucket"
    )


def profile_missing(profile: str, *, where: str) -> TransportError:
    return TransportError(
        f"{where}: AWS profile {profile!r} is not configured",
        hint=(
            f"add [profile {profile}] to ~/.aws/config or [{profile}] to ~/.aws/credentials "
            "(or the files named by AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE), "
            "or fix the mirror's `profile` in the manifest"
        ),
    )


def bucket_missing(where: str, detail: str) -> NotFoundError:
    return NotFoundError(
        f"{where}: the bucket does not exist ({detail})",
        hint="check the bucket name in the mirror's URL (and its endpoint_url, for an "
        "S3-compatible service)",
    )


def translate(exc: Exception, *, where: str, profile: str | None) -> TransportError | None:
    """The reconcile error for a boto3/botocore failure; None for anything else (a bug)."""
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        return _from_service(exc, where=where, profile=profile)
    if isinstance(exc, boto.ProfileNotFound):
        return profile_missing(
            profile or str(getattr(exc, "kwargs", {}).get("profile")), where=where
        )
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return TransportError(
            f"{where}: no usable AWS credentials ({exc})", hint=credentials_hint(profile)
        )
    if isinstance(exc, boto.CredentialRetrievalError | boto.SSOError | boto.TokenRetrievalError):
        return TransportError(
            f"{where}: the AWS credentials could not be loaded ({exc})",
            hint=credentials_hint(profile),
        )
    if isinstance(exc, boto.SSLError):
        return TransportError(
            f"{where}: TLS failed ({exc})",
            hint="check the endpoint's certificate (AWS_CA_BUNDLE names a custom CA bundle)",
        )
    if isinstance(
        exc,
        boto.EndpointConnectionError
        | boto.ConnectTimeoutError
        | boto.ConnectionClosedError
        | boto.ReadTimeoutError
        | boto.ProxyConnectionError,
    ):
        return MirrorUnreachableError(
            f"{where}: the S3 service did not answer ({exc})", hint=TIMEOUT_HINT
        )
    if isinstance(exc, boto.ParamValidationError | boto.InvalidDNSNameError):
        return TransportError(
            f"{where}: not a valid S3 location ({exc})",
            hint="expected s3://bucket/key with a valid bucket name (3-63 of a-z, 0-9, '.', '-')",
        )
    if isinstance(exc, boto.EndpointProviderError | boto.InvalidEndpointConfigurationError):
        return TransportError(
            f"{where}: the endpoint cannot be used ({exc})",
            hint=ENDPOINT_HINT,
        )
    if isinstance(exc, boto.NoRegionError):
        return TransportError(
            f"{where}: no AWS region is configured",
            hint="set AWS_DEFAULT_REGION, or `region` in the profile's ~/.aws/config section",
        )
    if isinstance(exc, boto.BotoCoreError):
        return TransportError(f"{where}: {exc}")
    return None


def _from_service(exc: Exception, *, where: str, profile: str | None) -> TransportError:
    response: dict[str, dict[str, object]] = getattr(exc, "response", {}) or {}
    error = response.get("Error", {})
    code = str(error.get("Code", "") or "")
    said = str(error.get("Message", "") or "").strip()
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    detail = f"{code}: {said}" if said and said != code else code or f"HTTP {status}"
    if code == "NoSuchBucket":
        return bucket_missing(where, detail)
    if code in NOT_FOUND_CODES:
        return NotFoundError(f"{where}: no such object ({detail})")
    if code in CREDENTIAL_CODES:
        # without s3:ListBucket, S3 answers 403 (not 404) for a key that does not exist
        maybe_missing = " (or the object is missing)" if code in ("403", "AccessDenied") else ""
        return TransportError(
            f"{where}: access refused{maybe_missing} ({detail})", hint=credentials_hint(profile)
        )
    if code in ("PreconditionFailed", "412"):
        return TransportError(
            f"{where}: the object changed while it was being read ({detail})",
            hint="the mirror is being updated; run again once it has settled",
        )
    if isinstance(status, int) and status >= 500:
        return TransportError(
            f"{where}: the S3 service kept failing ({detail})",
            hint="the service is having trouble (it was retried); run again later",
        )
    return TransportError(f"{where}: the S3 service refused the request ({detail})")

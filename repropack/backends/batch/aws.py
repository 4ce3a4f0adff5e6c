"""boto3 clients for one profile, and AWS errors as one line the user can act on.

boto3 is imported here only, when a run first needs it (``repropack --help`` never pays for it).
Credentials come from boto3's chain and nothing else; they are never read, copied or logged by
repropack (presigned URLs carry the access key *id* and a signature, never the secret key).
"""

from __future__ import annotations

from typing import Any

from repropack.backends.batch.settings import BatchSettings
from repropack.errors import BackendError

NAME = "aws-batch"
CREDENTIAL_CODES = ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
                    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
                    "RequestExpired", "AuthFailure")
TIMEOUT = 60  # seconds a call may take


class Clients:
    """The batch, s3 and logs clients of one profile (one boto3 session, shared)."""

    def __init__(self, settings: BatchSettings):
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # pragma: no cover - a dependency of repropack
            raise BackendError(NAME, f"boto3 is not installed ({exc})") from exc
        self.settings = settings
        session = boto3.session.Session(region_name=settings.region)
        if session.region_name is None:
            raise BackendError(NAME, f"profile {settings.profile!r}: no AWS region",
                               hint="set region in the profile, or AWS_REGION / AWS_DEFAULT_REGION")
        base = {"connect_timeout": 10, "read_timeout": TIMEOUT, "retries": {"max_attempts": 4, "mode": "standard"}}
        # path-style keeps presigned URLs valid for any S3-compatible endpoint (an IP has no subdomains)
        s3_config = Config(signature_version="s3v4", s3={"addressing_style": "path"} if settings.endpoint else {},
                           **base)
        kw = {"endpoint_url": settings.endpoint} if settings.endpoint else {}
        self.batch = session.client("batch", config=Config(**base), **kw)
        self.s3 = session.client("s3", config=s3_config, **kw)
        self.logs = session.client("logs", config=Config(**base), **kw)
        self.region = session.region_name


def describe(exc: BaseException) -> tuple[str, bool]:
    """(one line, is it about credentials?) of a botocore error; no request parameter is echoed."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
    except ImportError:  # pragma: no cover
        return str(exc), False
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return "no AWS credentials found (boto3's chain: environment, AWS_PROFILE, shared files, instance role)", True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        message = str(error.get("Message", "")).strip()
        return f"{code}: {message}" if message else code, code in CREDENTIAL_CODES
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {exc}", False
    return f"{type(exc).__name__}: {exc}", False


def error(what: str, exc: BaseException, *, job_id: str | None = None) -> BackendError:
    line, credentials = describe(exc)
    hint = "check the credentials boto3 finds (aws sts get-caller-identity); they may have expired" \
        if credentials else None
    return BackendError(NAME, f"{what}: {line}", job_id=job_id, hint=hint)


def aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, OSError)


def call(what: str, function: Any, /, **kwargs: Any) -> Any:
    """One AWS call; any failure becomes a BackendError naming ``what``."""
    try:
        return function(**kwargs)
    except aws_errors() as exc:
        raise error(what, exc) from None

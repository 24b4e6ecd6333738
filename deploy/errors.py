"""The one error type the deploy commands raise, and plain-words messages for AWS failures."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)


class DeployError(Exception):
    """A failure the user can act on; the command prints its message and exits with status 1."""


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError (e.g. ``ValidationException``)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


# AWS answers "not found" in several ways; deletes treat all of them as "already gone".
_NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFound",
        "ResourceNotFoundException",
        "ObjectNotFoundException",
        "NoSuchBucket",
        "NoSuchKey",
        "NotFound",
        "404",
        "RepositoryNotFoundException",
        "ImageNotFoundException",
    }
)
_NOT_FOUND_PHRASES = (
    "could not find",
    "not found",
    "does not exist",
    "no scalable target",
    "no scaling policy",
)


def is_not_found(exc: ClientError) -> bool:
    """True when AWS says the resource does not exist (SageMaker says ValidationException)."""
    code = error_code(exc)
    if code in _NOT_FOUND_CODES:
        return True
    if code == "ValidationException":
        message = error_message(exc).lower()
        return any(phrase in message for phrase in _NOT_FOUND_PHRASES)
    return False


def explain(exc: BaseException) -> str:
    """A message that says what went wrong and what to do about it."""
    if isinstance(exc, DeployError):
        return str(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
            "or run on a machine with an instance/role profile (see `aws configure`)"
        )
    if isinstance(exc, NoRegionError):
        return (
            "no AWS region: pass --region, or set AWS_REGION (or AWS_DEFAULT_REGION), "
            "or region in deploy.toml"
        )
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach AWS: {exc} (check the network, the region, and AWS_ENDPOINT_URL if set)"
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        operation = exc.operation_name
        message = error_message(exc)
        if code == "ResourceLimitExceeded":
            return (
                f"{operation}: account quota reached ({message}). Delete unused endpoints or ask "
                "for a "
                "quota increase in Service Quotas (SageMaker, '<instance type> for endpoint usage')"
            )
        if code == "ValidationException":
            return f"{operation}: AWS rejected the request: {message}"
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            return f"{operation}: access denied ({message}); the caller's IAM policy must allow it"
        if code in {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"}:
            return f"{operation}: the AWS credentials are invalid or expired ({message})"
        return f"{operation} failed: {code}: {message}"
    if isinstance(exc, BotoCoreError):
        return f"AWS client error: {exc}"
    return f"{type(exc).__name__}: {exc}"

"""The one error root of the AWS layer, and plain-words messages for AWS failures.

``DeployError`` is what every AWS command (``python -m deploy ...``, ``python -m benchmark
recommend``) raises for a failure the user can act on; ``explain`` turns it, and botocore's own
errors, into one line that says what to fix.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)


class DeployError(Exception):
    """A failure the user can act on; the command prints its message and exits with status 1."""


class InvalidInputError(DeployError):
    """An option or file AWS would reject, caught before any call (``benchmark recommend``: 2)."""


class JobFailedError(DeployError):
    """An Inference Recommender job ended FAILED, STOPPED or DELETED."""


class JobTimeoutError(DeployError):
    """An Inference Recommender job was still running when the wait ran out."""


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
    if isinstance(exc, ParamValidationError):
        return f"a request does not match botocore's model: {exc}"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        said = f"{exc.operation_name}: {code}: {error_message(exc)}"
        hint = _HINTS.get(code)
        return f"{said}; {hint}" if hint else said
    if isinstance(exc, BotoCoreError):
        return f"AWS client error: {exc}"
    return f"{type(exc).__name__}: {exc}"


_QUOTA = (
    "account quota reached: delete unused endpoints or ask for a quota increase in Service "
    "Quotas (SageMaker, '<instance type> for endpoint usage')"
)
_DENIED = "access denied: the caller's IAM policy must allow it"
_EXPIRED = "the AWS credentials are invalid or expired"
# What to do about the error codes people meet most; every message also names the code.
_HINTS = {
    "ResourceLimitExceeded": _QUOTA,
    "AccessDenied": _DENIED,
    "AccessDeniedException": _DENIED,
    "UnauthorizedOperation": _DENIED,
    "ExpiredToken": _EXPIRED,
    "ExpiredTokenException": _EXPIRED,
    "InvalidClientTokenId": _EXPIRED,
}

"""The one error root and its messages: what went wrong, what AWS said, and what to do."""

from __future__ import annotations

import pytest
from aws_fakes import client_error
from botocore.exceptions import NoCredentialsError, NoRegionError, ParamValidationError

from deploy.errors import explain, is_not_found


def test_error_messages_say_what_to_do() -> None:
    assert "AWS_ACCESS_KEY_ID" in explain(NoCredentialsError())
    assert "--region" in explain(NoRegionError())
    assert "Service Quotas" in explain(client_error("ResourceLimitExceeded", "limit 0"))
    assert (
        explain(client_error("ValidationException", "bad name"))
        == "CreateEndpoint: ValidationException: bad name"
    )
    assert explain(client_error("AccessDeniedException", "no", "CreateModel")) == (
        "CreateModel: AccessDeniedException: no; access denied: the caller's IAM policy must "
        "allow it"
    )
    assert explain(client_error("NoSuchBucket", "gone", "PutObject")) == (
        "PutObject: NoSuchBucket: gone"
    )
    assert "does not match botocore's model" in explain(
        ParamValidationError(report="Missing required parameter JobType")
    )


@pytest.mark.parametrize(
    ("code", "message", "gone"),
    [
        ("ValidationException", 'Could not find model "x".', True),
        ("ValidationException", "Could not find endpoint", True),
        ("ObjectNotFoundException", "No scalable target registered", True),
        ("ValidationException", "No scaling policy found for service namespace", True),
        ("NoSuchBucket", "", True),
        ("ValidationException", "Cannot delete endpoint config in use", False),
        ("ThrottlingException", "Rate exceeded", False),
    ],
)
def test_already_deleted_is_recognised(code: str, message: str, gone: bool) -> None:
    assert is_not_found(client_error(code, message)) is gone

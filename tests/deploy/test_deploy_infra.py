"""infra/prerequisites.yaml: cfn-lint clean, and the properties the deploy tool relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "prerequisites.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert decoded is not None
    return dict(decoded)


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["PolicyDocument"]["Statement"])


def test_cfn_lint_passes() -> None:
    executable = Path(sys.executable).with_name("cfn-lint")
    command = str(executable) if executable.exists() else shutil.which("cfn-lint")
    assert command, "cfn-lint is not installed (it is in requirements/dev.txt)"
    lint = subprocess.run(
        [command, str(TEMPLATE)], capture_output=True, text=True, timeout=300, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_repository_scans_on_push(template: dict[str, Any]) -> None:
    repository = template["Resources"]["Repository"]["Properties"]
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}


def test_the_bucket_is_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["ArtifactBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (deny,) = statements(template["Resources"]["ArtifactBucketPolicy"]["Properties"])
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def test_the_execution_role_has_least_privilege(template: dict[str, Any]) -> None:
    role = template["Resources"]["ExecutionRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    granted = [statement for policy in role["Policies"] for statement in statements(policy)]
    actions = {action for statement in granted for action in _list(statement["Action"])}
    assert actions == {
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetAuthorizationToken",
        "s3:GetObject",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
        "cloudwatch:PutMetricData",
    }
    for statement in granted:
        assert not any(action.endswith("*") for action in _list(statement["Action"])), statement
        if statement["Resource"] == "*":  # only what AWS cannot scope, and metrics by namespace
            assert statement["Action"] in (
                "ecr:GetAuthorizationToken",
                "cloudwatch:PutMetricData",
            ), statement
            if statement["Action"] == "cloudwatch:PutMetricData":
                assert "cloudwatch:namespace" in statement["Condition"]["StringLike"]
    (s3_read,) = [statement for statement in granted if statement["Action"] == "s3:GetObject"]
    assert s3_read["Resource"] == {"Fn::Sub": "${ArtifactBucket.Arn}/${ArtifactPrefix}/*"}


def test_the_deployer_may_pass_only_the_execution_role(template: dict[str, Any]) -> None:
    deployer = statements(template["Resources"]["DeployerPolicy"]["Properties"])
    (pass_role,) = [statement for statement in deployer if statement["Action"] == "iam:PassRole"]
    assert pass_role["Resource"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert not any(
        action == "*" or action.endswith(":*") for s in deployer for action in _list(s["Action"])
    )


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)

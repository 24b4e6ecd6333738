"""The one call wrapper: its dry-run modes check every call against botocore's model."""

from __future__ import annotations

import io
import json

import pytest
from aws_fakes import offline_clients
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber

from deploy.gateway import Gateway, is_read_only


def test_dry_run_prints_writes_and_makes_none(capsys: pytest.CaptureFixture[str]) -> None:
    gateway = Gateway(region="us-east-1", mode="plan")
    params = {"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r"}
    assert gateway.call("sagemaker", "create_model", **params) == {}
    assert (
        capsys.readouterr().out
        == f"dry-run: sagemaker.create_model {json.dumps(params, sort_keys=True)}\n"
    )
    assert gateway.planned == [("sagemaker", "create_model", params)]
    with pytest.raises(ParamValidationError, match="EndpointConfigName"):
        gateway.call("sagemaker", "create_endpoint", EndpointName="e")
    assert is_read_only("describe_endpoint") and is_read_only("head_bucket")
    assert not is_read_only("upload_file") and not is_read_only("put_scaling_policy")


def test_offline_dry_run_checks_every_call_and_makes_none() -> None:
    clients = offline_clients("sagemaker")
    out = io.StringIO()
    gateway = Gateway(region=None, mode="offline", clients=clients, out=out)
    with Stubber(clients["sagemaker"]):  # nothing queued: a real call would fail the test
        with pytest.raises(ParamValidationError, match="JobType"):
            gateway.call("sagemaker", "create_inference_recommendations_job", JobName="x")
        reply = gateway.call(
            "sagemaker", "describe_model", placeholder={"ModelArn": "<arn>"}, ModelName="m"
        )
    assert reply == {"ModelArn": "<arn>"}
    assert out.getvalue() == 'sagemaker.describe_model\n{\n  "ModelName": "m"\n}\n'


def test_an_offline_dry_run_needs_no_region() -> None:
    out = io.StringIO()
    gateway = Gateway(region=None, mode="offline", out=out)
    gateway.call("s3", "put_object", note="the archive", Bucket="b", Key="k", Body=b"abc")
    assert out.getvalue() == (
        's3.put_object  # the archive\n{\n  "Bucket": "b",\n  "Key": "k",\n'
        '  "Body": "<3 bytes>"\n}\n'
    )

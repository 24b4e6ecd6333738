"""autoscaling.json: one model for the writer (benchmark recommend) and the reader (autoscale)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploy_support import example_suggestion

from deploy import scaling
from deploy.errors import DeployError
from deploy.suggestion import INVOCATIONS, AutoscaleSuggestion


def test_a_recommendation_needs_only_metric_and_target(tmp_path: Path) -> None:
    path = tmp_path / "rec.json"
    path.write_text(json.dumps({"metric": INVOCATIONS, "target_value": 1234}))
    policy = scaling.build_policy(
        scaling.PolicyFlags(), recommendation=AutoscaleSuggestion.read(path)
    )
    assert (policy.target_value, policy.min_capacity, policy.max_capacity) == (1234.0, 1, 2)
    assert policy.source == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must be a JSON object"),
        ('{"metric": "SageMakerVariantInvocationsPerInstance"}', "lacks target_value"),
        (
            '{"metric": "SageMakerVariantInvocationsPerInstance", "target_value": "high"}',
            "target_value must be a number",
        ),
        (
            '{"metric": "SageMakerVariantInvocationsPerInstance", "target_value": 5, '
            '"min_capacity": 1.5}',
            "whole number",
        ),
        ("{", "is not JSON"),
    ],
)
def test_bad_recommendation_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rec.json"
    path.write_text(content)
    with pytest.raises(DeployError, match=message):
        AutoscaleSuggestion.read(path)


def test_an_unknown_metric_in_a_recommendation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="is not one of"):
        scaling.Policy(metric="CPUUtilization", target_value=50).validate()  # type: ignore[arg-type]
    path = tmp_path / "rec.json"
    path.write_text(json.dumps({"metric": "CPUUtilization", "target_value": 50}))
    with pytest.raises(DeployError, match="metric 'CPUUtilization' is not one of"):
        AutoscaleSuggestion.read(path)


def test_what_the_writer_writes_the_reader_reads_back(tmp_path: Path) -> None:
    written = example_suggestion()
    path = tmp_path / "autoscaling.json"
    path.write_text(written.to_json())
    assert AutoscaleSuggestion.read(path) == written


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target_value": 0.0}, "target value must be a positive number"),
        ({"target_value": float("nan")}, "target value must be a positive number"),
        ({"min_capacity": 0}, "min_capacity must be at least 1"),
        ({"min_capacity": 3, "max_capacity": 2}, "is below min_capacity"),
        ({"scale_in_cooldown": 90_000}, "scale_in_cooldown must be 0-86400"),
    ],
)
def test_the_writer_cannot_write_what_the_reader_refuses(
    fields: dict[str, float], message: str
) -> None:
    with pytest.raises(DeployError, match=message):
        example_suggestion(**fields)

"""Models Inference Recommender has benchmarked (`ListModelMetadata`), to check a package against.

A model package's `Framework`, `FrameworkVersion` and `NearestModelName` only help Inference
Recommender when they name a model it knows. `--check-metadata` asks before registering, so a
typo fails in a second instead of after a 45-minute job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from deploy.errors import InvalidInputError
from deploy.gateway import Gateway

MAX_PAGES: Final = 20


@dataclass(frozen=True, slots=True, order=True)
class ModelMetadata:
    framework: str
    framework_version: str
    model: str
    domain: str
    task: str


def metadata_request(framework: str) -> dict[str, Any]:
    return {
        "SearchExpression": {"Filters": [{"Name": "Framework", "Value": framework}]},
        "MaxResults": 100,
    }


def benchmarked_models(gateway: Gateway, *, framework: str) -> list[ModelMetadata]:
    """Every (framework version, model) Inference Recommender lists for `framework`."""
    found: list[ModelMetadata] = []
    request = metadata_request(framework)
    for _ in range(MAX_PAGES):
        page = gateway.call(
            "sagemaker",
            "list_model_metadata",
            note="checks --framework-version and --nearest-model-name",
            **request,
        )
        found.extend(
            ModelMetadata(
                framework=item["Framework"],
                framework_version=item["FrameworkVersion"],
                model=item["Model"],
                domain=item["Domain"],
                task=item["Task"],
            )
            for item in page.get("ModelMetadataSummaries", [])
        )
        token = page.get("NextToken")
        if not token:
            break
        request = {**request, "NextToken": token}
    return sorted(set(found))


def check_known(
    known: list[ModelMetadata], *, framework: str, framework_version: str, nearest_model_name: str
) -> None:
    """Raise InvalidInputError naming the valid choices when the pair is not benchmarked."""
    if not known:
        raise InvalidInputError(
            f"--framework: Inference Recommender lists no benchmarked model for {framework!r}"
        )
    versions = sorted({item.framework_version for item in known})
    if framework_version not in versions:
        raise InvalidInputError(
            f"--framework-version: {framework_version!r} is not one Inference Recommender knows "
            f"for {framework}; choose one of {', '.join(versions)}"
        )
    models = sorted({item.model for item in known if item.framework_version == framework_version})
    if nearest_model_name not in models:
        raise InvalidInputError(
            f"--nearest-model-name: {nearest_model_name!r} is not benchmarked for {framework} "
            f"{framework_version}; choose one of {', '.join(models)}"
        )

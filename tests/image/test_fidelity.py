"""The image serves the fidelity fixtures as SageMaker's built-in XGBoost container serves them.

Each case starts the image with the raw fixture directory (what SageMaker unpacks from
`model.tar.gz`, written by real XGBoost 0.90 to 3.2) mounted read-only at /opt/ml/model, so
the start-up import (tree limit, ensemble, objective) and the HTTP path are both under test;
the fixture's 200 rows (NaNs and exact split thresholds included) are sent in one request and
the answer must equal the built-in's scores within `model.artifact.Tolerance`.

Together the cases cover every model format (pickles of 0.90 and 1.2, legacy binary of 1.3, 1.5 and
1.7, JSON, UBJSON of 1.7, 3.0 and 3.x), early-stopped models of each container generation, a dart
booster, every objective family (binary, multi:softprob with k values a row, multi:softmax,
regression with outputs of 11 to 23, ranking, count, survival), a k-fold directory with
`SAGEMAKER_INFERENCE_ENSEMBLE` on and off, and one of 3.0.5. Three cases are also sent as LIBSVM
(with and without a Content-Type) and as RecordIO-protobuf, also answered as RecordIO.
`RTB_TREE_LIMIT` is shown to reach the start-up build. About 25 s for the 20 containers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from model.artifact import Tolerance
from serve.recordio import Record, frame, split_records
from tests import contract
from tests.fixtures.cases import FidelityCase, fidelity_cases

from .conftest import RunServer

pytestmark = pytest.mark.container

CSV = "text/csv"
LIBSVM = "text/libsvm"
RECORDIO = "application/x-recordio-protobuf"
NO_CONTENT_TYPE = ""
"""A request without a Content-Type, which the built-in reads as LIBSVM."""
EVERY_FORMAT = (CSV, LIBSVM, NO_CONTENT_TYPE, RECORDIO)


@dataclass(frozen=True)
class ImageCase:
    fixture: str
    formats: tuple[str, ...] = (CSV,)
    environment: dict[str, str] = field(default_factory=dict)
    id: str = ""

    @property
    def ensemble(self) -> bool:
        return self.environment.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true") == "true"


IMAGE_CASES = [
    # pickle protocol 3 of XGBoost 0.90 (the 0.90-x containers): the pickled best_ntree_limit
    ImageCase("es-pickle-0.90", EVERY_FORMAT),
    # pickle protocol 4 of 1.2: multi:softprob (k values a row), num_parallel_tree 2, cut
    ImageCase("es-softprob-forest-1.2", EVERY_FORMAT),
    # legacy binary of 1.3: early-stopped, every tree served as the 1.3-1 container serves it
    ImageCase("es-binary-1.3"),
    # legacy binary of 1.5 (the 1.5-1 container): its saved best_ntree_limit restored on load
    ImageCase("es-binary-1.5"),
    # legacy binary of 1.7, dart: the saved best_ntree_limit, tree weights cut with the trees
    ImageCase("es-dart-1.7"),
    ImageCase("es-json-1.7"),
    ImageCase("es-ubj-1.7"),
    # UBJSON `xgboost-model` of 3.x (as the 3.0-5 container saves): every tree
    ImageCase("es-ubj-3.x"),
    # k-fold output of 3.0.5 (the 3.0-5 container): three UBJSON models, every tree, their mean
    ImageCase("kfold-logistic-3.0"),
    ImageCase("multi-softmax-3.x"),
    ImageCase("binary-hinge-1.7"),
    ImageCase("binary-logitraw-3.x"),
    ImageCase("reg-squarederror-3.x"),
    ImageCase("rank-pairwise-1.7"),
    ImageCase("count-poisson-3.x"),
    ImageCase("survival-cox-1.7", EVERY_FORMAT),
    # k-fold output of 1.2 (three pickles with different tree limits): their mean, or the first
    ImageCase("kfold-pickle-1.2", id="kfold-pickle-1.2-ensemble"),
    ImageCase(
        "kfold-pickle-1.2",
        environment={"SAGEMAKER_INFERENCE_ENSEMBLE": "false"},
        id="kfold-pickle-1.2-first-file",
    ),
]

FIXTURES = {case.name: case for case in fidelity_cases()}


def encode(features: npt.NDArray[np.float32], content_type: str) -> bytes:
    """The rows in a request format; NaN is a missing value (absent in LIBSVM and RecordIO)."""
    if content_type == CSV:
        return contract.encode_rows(features.tolist(), CSV)
    if content_type in (LIBSVM, NO_CONTENT_TYPE):
        # a label (ignored), then `column:value` for each value present: the index as written,
        # the column number, as every released built-in container reads it
        return "\n".join(
            " ".join(
                ["0"]
                + [f"{column}:{value!r}" for column, value in enumerate(row) if value == value]
            )
            for row in features.tolist()
        ).encode()
    if content_type == RECORDIO:
        payloads = []
        for row in features.tolist():  # sparse, as the SDK's RecordSerializer writes a row
            record = Record()
            tensor = record.features["values"].float32_tensor
            present = [column for column, value in enumerate(row) if value == value]
            tensor.values.extend(row[column] for column in present)
            tensor.keys.extend(present)
            tensor.shape.append(len(row))
            payloads.append(record.SerializeToString())
        return frame(payloads)
    raise ValueError(content_type)


def decode(response: httpx.Response, *, rows: int) -> npt.NDArray[np.float32]:
    """The scores of a CSV answer (one line a row, k comma-separated values for softprob) or a
    RecordIO one (label["score"] of each record), as float32."""
    assert response.status_code == 200, response.text
    media_type = response.headers["content-type"].split(";")[0]
    if media_type == CSV:
        lines = response.text.splitlines()
        values = [[float(cell) for cell in line.split(",")] for line in lines]
    else:
        assert media_type == RECORDIO, media_type
        values = []
        for payload in split_records(response.content, max_records=rows):
            record = Record()
            record.ParseFromString(payload)
            values.append(list(record.label["score"].float32_tensor.values))
    scores = np.array(values, dtype=np.float32)
    return scores[:, 0] if scores.shape[1] == 1 else scores


def assert_served(got: npt.NDArray[np.float32], want: npt.NDArray[np.float32], what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, the built-in's {want.shape}"
    excess = Tolerance().excess(got, want)
    assert (excess <= 0).all(), (
        f"{what}: {int((excess > 0).sum())} rows beyond the tolerance, "
        f"max |diff| {float(np.abs(got - want).max())}"
    )


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c.id or c.fixture for c in IMAGE_CASES])
def test_the_image_serves_what_the_builtin_serves(run_server: RunServer, case: ImageCase) -> None:
    fixture: FidelityCase = FIXTURES[case.fixture]
    want = fixture.expected if case.ensemble else fixture.expected_first_member
    environment = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", **case.environment}
    with run_server(model_dir=fixture.model_dir, environment=environment) as server:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
            for content_type in case.formats:
                headers = {"Accept": CSV}
                if content_type:
                    headers["Content-Type"] = content_type
                response = client.post(
                    "/invocations", content=encode(fixture.features, content_type), headers=headers
                )
                got = decode(response, rows=len(fixture.features))
                assert_served(got, want, f"{case.fixture} as {content_type or 'no Content-Type'}")
            if RECORDIO in case.formats:
                response = client.post(
                    "/invocations",
                    content=encode(fixture.features, RECORDIO),
                    headers={"Content-Type": RECORDIO, "Accept": RECORDIO},
                )
                got = decode(response, rows=len(fixture.features))
                assert_served(got, want, f"{case.fixture} answered as RecordIO")
        log = server.logs()
    assert "holds a raw SageMaker model; building the serving artifact" in log
    assert "compiled predictor" in log


@pytest.mark.parametrize(
    ("tree_limit", "rule"),
    [(None, "1 of 6 trees (best_ntree_limit"), ("all", "6 of 6 trees (all trees)")],
    ids=["auto", "all"],
)
def test_rtb_tree_limit_chooses_the_trees_at_start_up(
    run_server: RunServer, tree_limit: str | None, rule: str
) -> None:
    """An early-stopped 1.7 model: by default its best round, as the 1.7-1 container serves it;
    with RTB_TREE_LIMIT=all every tree, whose scores are not the built-in's."""
    fixture = FIXTURES["es-binary-1.7"]
    environment = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    if tree_limit is not None:
        environment["RTB_TREE_LIMIT"] = tree_limit
    with run_server(model_dir=fixture.model_dir, environment=environment) as server:
        response = httpx.post(
            f"{server.base_url}/invocations",
            content=encode(fixture.features, CSV),
            headers={"Content-Type": CSV},
            timeout=30.0,
        )
        got = decode(response, rows=len(fixture.features))
        log = server.logs()
    assert f"tree limit: {rule}" in log
    within = (Tolerance().excess(got, fixture.expected) <= 0).all()
    assert within == (tree_limit is None)

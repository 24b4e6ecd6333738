"""Every fixture model (written by real XGBoost 0.90 to 3.x) builds into an artifact that serves
what SageMaker's built-in container serves: tree limit, objective, outputs per row."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from model_testdata import requires_gcc

from model.artifact import Tolerance, read_manifest
from model.build import build_artifact, resolve_sources
from model.errors import UnsupportedFormatError
from model.source import find_model_files, read_source
from model.tree_limit import RULE_ALL, RULE_PICKLED, RULE_SAVED, container_tree_limit
from serve.predictor import load_model
from tests.fixtures.cases import FidelityCase, fidelity_cases

CASES = fidelity_cases()
SINGLE = [case for case in CASES if not case.is_ensemble]
REPO = Path(__file__).resolve().parents[2]


def _by_name(name: str) -> FidelityCase:
    return next(case for case in CASES if case.name == name)


def _assert_served(got: np.ndarray, case: FidelityCase) -> None:
    assert got.dtype == np.float32 and got.shape == case.expected.shape
    excess = Tolerance().excess(got, case.expected)
    assert (excess <= 0).all(), f"{case.name}: max |diff| {np.nanmax(np.abs(got - case.expected))}"


@requires_gcc
@pytest.mark.parametrize("case", SINGLE, ids=[case.name for case in SINGLE])
def test_the_raw_model_directory_serves_what_the_builtin_serves(
    case: FidelityCase, tmp_path: Path
) -> None:
    """The start-up import: `build_artifact` on the directory SageMaker unpacks, then the
    server's `load_model` (which checks the verification set) and `predict`/`predict_row`."""
    manifest = build_artifact(case.model_dir, output_dir=tmp_path / "a")
    assert manifest.model.objective == case.objective
    assert manifest.model.num_class == (
        case.num_class if case.objective.startswith("multi:") else 0
    )
    loaded = load_model(tmp_path / "a")
    _assert_served(loaded.predictor.predict(case.features), case)
    rows = [loaded.predictor.predict_row([float(v) for v in row]).copy() for row in case.features]
    _assert_served(np.concatenate(rows), case)
    assert loaded.predictor.num_outputs == (1 if case.expected.ndim == 1 else case.num_class)


ENSEMBLES = [case for case in CASES if case.is_ensemble]


@requires_gcc
@pytest.mark.parametrize("ensemble", [True, False], ids=["ensemble", "first-file"])
@pytest.mark.parametrize("case", ENSEMBLES, ids=[case.name for case in ENSEMBLES])
def test_a_k_fold_directory_serves_the_builtins_ensemble(
    case: FidelityCase, ensemble: bool, tmp_path: Path
) -> None:
    """k-fold output (`xgboost-model-0` ... `-2`): the mean, or the per-row vote for
    multi:softmax; with SAGEMAKER_INFERENCE_ENSEMBLE=false, the first file alone."""
    manifest = build_artifact(case.model_dir, output_dir=tmp_path / "a", ensemble=ensemble)
    want = case.expected if ensemble else case.expected_first_member
    if ensemble:
        assert manifest.ensemble is not None
        assert [m.source_file for m in manifest.ensemble.members] == list(case.files)
        combine = "vote" if case.objective == "multi:softmax" else "mean"
        assert manifest.ensemble.combine == combine
    else:
        assert manifest.ensemble is None and manifest.model.source_file == case.files[0]
    assert np.abs(case.expected - case.expected_first_member).max() > 1e-3  # members differ
    loaded = load_model(tmp_path / "a")
    got = loaded.predictor.predict(case.features)
    assert got.shape == want.shape and (Tolerance().excess(got, want) <= 0).all()
    rows = [loaded.predictor.predict_row([float(v) for v in row]).copy() for row in case.features]
    assert (Tolerance().excess(np.concatenate(rows), want) <= 0).all()


@pytest.mark.parametrize(
    ("name", "rule", "trees"),
    [
        ("es-pickle-0.90", RULE_PICKLED, (2, 7)),
        ("es-pickle-1.0", RULE_PICKLED, (2, 7)),
        ("es-pickle-1.2", RULE_PICKLED, (2, 7)),
        # XGBoost < 1.4: the first best_ntree_limit x num_class trees (8 x 3 of 8 rounds x 6)
        ("es-softprob-forest-0.90", RULE_PICKLED, (24, 48)),
        ("es-softprob-forest-1.0", RULE_PICKLED, (24, 48)),
        ("es-softprob-forest-1.2", RULE_PICKLED, (24, 48)),
        # 1.3: saved with best_iteration but no best_ntree_limit; its load_model sets none
        ("es-binary-1.3", RULE_ALL, (6, 6)),
        # 1.5: its load_model restores the saved best_ntree_limit, as 1.7's does
        ("es-binary-1.5", RULE_SAVED, (1, 6)),
        ("es-softprob-forest-1.5", RULE_SAVED, (12, 42)),
        ("es-pickle-1.7", RULE_PICKLED, (1, 6)),
        ("es-binary-1.7", RULE_SAVED, (1, 6)),
        ("es-json-1.7", RULE_SAVED, (1, 6)),
        ("es-ubj-1.7", RULE_SAVED, (1, 6)),
        ("es-dart-1.7", RULE_SAVED, (1, 6)),
        # best_ntree_limit 4 = 2 rounds of num_parallel_tree 2, times 3 classes
        ("es-softprob-forest-1.7", RULE_SAVED, (12, 42)),
        ("es-ubj-3.0", RULE_ALL, (6, 6)),
        ("es-ubj-3.x", RULE_ALL, (6, 6)),
    ],
)
def test_the_tree_limit_is_the_container_generations(
    name: str, rule: str, trees: tuple[int, int]
) -> None:
    case = _by_name(name)
    (model_file,) = [case.model_dir / file for file in case.files]
    limit = container_tree_limit(read_source(model_file))
    assert (limit.rule, limit.trees_used, limit.trees_in_source) == (rule, *trees)


@requires_gcc
def test_the_tree_limit_can_be_overridden_and_all_trees_score_differently(tmp_path: Path) -> None:
    """`model build --tree-limit all`: every tree is compiled, and then the scores are not the
    built-in's (which is why the limit matters), as the manifest and `inspect` say."""
    case = _by_name("es-binary-1.7")
    output = tmp_path / "all"
    run = subprocess.run(
        [sys.executable, "-m", "model", "build", str(case.model_dir), "--output", str(output)]
        + ["--tree-limit", "all", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    manifest = read_manifest(output)
    assert manifest.model.tree_limit is not None
    assert (manifest.model.tree_limit.rule, manifest.model.num_trees) == (RULE_ALL, 6)
    got = load_model(output).predictor.predict(case.features)
    assert np.abs(got - case.expected).max() > 0.01
    described = subprocess.run(
        [sys.executable, "-m", "model", "inspect", str(output), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    limit = json.loads(described.stdout)["manifest"]["model"]["tree_limit"]
    assert limit == {"trees_used": 6, "trees_in_source": 6, "rule": RULE_ALL}
    rounds = build_artifact(case.model_dir, output_dir=tmp_path / "two", tree_limit=2)
    assert rounds.model.num_trees == 2 and rounds.model.tree_limit is not None
    assert rounds.model.tree_limit.rule == "user: first 2 rounds"


def test_bad_tree_limits_are_usage_errors(tmp_path: Path) -> None:
    case = _by_name("es-binary-1.7")
    run = subprocess.run(
        [sys.executable, "-m", "model", "build", str(case.model_dir), "--output", str(tmp_path)]
        + ["--tree-limit", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and "expected auto, all or a number of rounds" in run.stderr


def test_ensemble_members_are_the_top_level_non_dot_files(tmp_path: Path) -> None:
    """Dotfiles are ignored (as the built-in does since 1.3-1); a file that is not a model
    fails the build, as it fails the built-in's load; a model.tar.gz of the directory works."""
    case = _by_name("kfold-logistic-1.7")
    directory = tmp_path / "model"
    shutil.copytree(case.model_dir, directory)
    (directory / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert [path.name for path in find_model_files(directory)] == list(case.files)
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        for path in sorted(directory.iterdir()):
            tar.add(path, arcname=path.name)
    with resolve_sources(tmp_path / "model.tar.gz") as files:
        assert [path.name for path in files] == list(case.files)
    (directory / "notes.txt").write_text("trained on 2026-11-01\n")
    with pytest.raises(UnsupportedFormatError, match=r"notes\.txt.*not a model"):
        find_model_files(directory)
    assert find_model_files(directory, ensemble=False) == [directory / case.files[0]]

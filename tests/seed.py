"""The public SageMaker seed model, kept in the repository's test data so a clone alone runs
every test: the artifact AWS's RTB guidance ships and 5,000 predictions XGBoost made for it
(see tests/data/seed-model/README.md)."""

from __future__ import annotations

from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent / "data" / "seed-model"
SEED_TARBALL = SEED_DIR / "model.tar.gz"
SEED_REFERENCE = SEED_DIR / "reference.csv"

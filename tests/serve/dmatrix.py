"""What XGBoost itself holds for a request: the reference the decoders are held to."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def xgboost_sees(source: Any, *, num_features: int) -> np.ndarray:
    """`xgboost.DMatrix(source)` (a dense or scipy sparse matrix, or a `path?format=libsvm`
    URI), densified as the SageMaker container builds it from a request: NaN where no entry."""
    import xgboost

    with warnings.catch_warnings():  # XGBoost 3.1+ warns that text input is deprecated
        warnings.simplefilter("ignore", UserWarning)
        stored = xgboost.DMatrix(source).get_data()
    dense = np.full((stored.shape[0], num_features), np.nan, dtype=np.float32)
    for row in range(stored.shape[0]):
        start, end = stored.indptr[row], stored.indptr[row + 1]
        dense[row, stored.indices[start:end]] = stored.data[start:end]
    return dense

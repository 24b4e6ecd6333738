"""The feature matrix every decoder produces and the predictor consumes.

C-contiguous float32, shape (rows, num_features), NaN for a missing value. Values are parsed
as doubles and rounded to float32; a finite value beyond float32's range is refused
(`invalid_value`) rather than silently becoming infinity.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FeatureMatrix = npt.NDArray[np.float32]

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest finite float32: a value beyond it is refused as `invalid_value`."""

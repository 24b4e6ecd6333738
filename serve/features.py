"""The feature matrix every decoder produces and the predictor consumes.

C-contiguous float32, shape (rows, num_features), NaN for a missing value. Values are parsed
as doubles and rounded to float32; a finite value beyond float32's range is refused
(`invalid_value`) rather than silently becoming infinity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FeatureMatrix = npt.NDArray[np.float32]

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest finite float32: a value beyond it is refused as `invalid_value`."""


def fits_float32(values: Sequence[float]) -> bool:
    """True when every value is finite and within float32's range: the decoders' quick check
    of a parsed row. NaN or an infinity anywhere makes the sum non-finite, and so does a sum
    that overflows; on False the caller looks at the values one by one (NaN is then a missing
    value). An empty row fits."""
    if not values:
        return True
    total = sum(values)
    return total - total == 0.0 and -FLOAT32_MAX <= min(values) and max(values) <= FLOAT32_MAX

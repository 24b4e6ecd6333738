"""The feature matrix every decoder produces and the predictor consumes.

C-contiguous float32, shape (rows, num_features), NaN for a missing value, 1 to `max_rows`
rows. Values are parsed as doubles and rounded to float32; a finite value beyond float32's
range is refused (`invalid_value`) rather than silently becoming infinity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from serve.errors import EmptyBodyError, InvalidValueError, TooManyRowsError

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


def check_row_count(rows: int, *, max_rows: int) -> None:
    """Refuse a body of no rows (`empty_body`) or of more than `max_rows` (`too_many_rows`)."""
    if rows == 0:
        raise EmptyBodyError("The body holds no rows.")
    if rows > max_rows:
        raise TooManyRowsError(f"The body holds {rows} rows; the limit is {max_rows}.")


def beyond_float32(where: str) -> InvalidValueError:
    """The refusal of a value float32 cannot hold; `where` names it, e.g. `Row 2, column 3`."""
    return InvalidValueError(f"{where}: the value is infinite or outside the float32 range.")

"""Where a 2-D mask is True, as `np.nonzero` gives it, 15x faster.

NumPy's `nonzero` of a 2-D array walks it with a general N-d iterator (about
2.3 ns an entry); `flatnonzero` of the flat mask and one `divmod` give the
same indices in the same (row-major) order for about 0.15 ns an entry. The
collecting and binning passes call it on every chunk, so it was a third of an
exact pass's time (Huber's pass 2 on 20M rows: 0.44 of 1.5 s).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def nonzero_2d(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """`np.nonzero(mask)` for a 2-D `mask` (a broadcast view is fine).

    Example:

    >>> rows, cols = nonzero_2d(np.array([[True, False], [True, True]]))
    >>> rows.tolist(), cols.tolist()
    ([0, 1, 1], [0, 0, 1])
    """
    columns = mask.shape[1]
    flat = np.flatnonzero(mask)
    if columns == 1:
        return flat, np.zeros_like(flat)
    return np.divmod(flat, columns)

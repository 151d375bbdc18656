"""Order-preserving float64 <-> uint64 keys.

A float64 `y` maps to an unsigned 64-bit key with the same order (its IEEE 754
bits with the sign folded; -0.0 and 0.0 share a key), so equal-width key bins
are even within a binade and logarithmic across binades: 1e9 + tiny noise,
values spanning many orders of magnitude and outliers all get bins where the
data are.
"""

from __future__ import annotations

import numpy as np

_SIGN = np.uint64(1 << 63)
MAX_KEY = np.uint64(2**64 - 1)


def to_keys(y: np.ndarray) -> np.ndarray:
    """Maps float64 values to uint64 keys with the same order (-0.0 == 0.0)."""
    keys = np.add(y, 0.0).view(np.uint64)  # a new array; -0.0 becomes +0.0
    flip = (keys.view(np.int64) >> 63).view(np.uint64)  # all ones if negative
    flip |= _SIGN
    keys ^= flip
    return keys


def from_keys(keys: np.ndarray) -> np.ndarray:
    """The inverse of `to_keys`."""
    keys = np.asarray(keys, dtype=np.uint64)
    bits = np.where(keys & _SIGN, keys ^ _SIGN, ~keys)
    return bits.view(np.float64)

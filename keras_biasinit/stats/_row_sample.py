"""A mergeable random sample of rows: the `size` rows of largest random key.

Each row gets a key `log(u) / w` (`u` uniform in [0, 1), `w` its weight; 1
without weights) and the sample keeps the rows of the `size` largest keys:
a uniform sample without replacement, or with weights Efraimidis and
Spirakis's A-Res (a row is drawn with probability proportional to its weight).
The keys do not depend on the order of the rows, so a sample of sorted data is
as random as one of shuffled data, and two samples merge into the sample of
the union by keeping the largest keys of both. The generator is seeded from
the first rows offered, so a computation is repeatable and shards draw
different keys.

Example:

>>> sample = RowSample(2, columns=1)
>>> sample.offer(np.arange(5.0)[:, None], None)
>>> sample.rows.shape
(2, 1)
"""

from __future__ import annotations

import zlib
from typing import Optional

import numpy as np

from keras_biasinit.stats.state import Arrays


class RowSample:
    """At most `size` rows of `columns` float64 values, with their keys."""

    def __init__(self, size: int, columns: int) -> None:
        self.size, self.columns = int(size), int(columns)
        self._keys = np.zeros(self.size + max(1, self.size // 8))
        self._rows = np.zeros((0, columns))
        self.filled, self.threshold = 0, -np.inf  # keys <= threshold never enter
        self._rng: Optional[np.random.Generator] = None

    @property
    def keys(self) -> np.ndarray:
        self._compact()
        return self._keys[: self.filled]

    @property
    def rows(self) -> np.ndarray:
        """The sampled rows, `(min(size, rows offered), columns)`."""
        self._compact()
        return self._rows[: self.filled]

    def offer(self, y: np.ndarray, w: Optional[np.ndarray]) -> None:
        """Offers rows `y` `(n, columns)` with positive weights `w` (or None)."""
        if y.shape[0] == 0:
            return
        if self._rng is None:
            seed = zlib.crc32(np.ascontiguousarray(y[:1]).tobytes())
            self._rng = np.random.default_rng(seed)
        with np.errstate(divide="ignore"):
            keys = np.log(self._rng.random(y.shape[0]))
        self._take(keys if w is None else keys / w, y)

    def _take(self, keys: np.ndarray, y: np.ndarray) -> None:
        """Rows whose key can still be among the `size` largest enter a
        buffer (an eighth of `size` more rows); a full buffer is compacted."""
        better = np.flatnonzero(keys > self.threshold)
        if better.size == 0:
            return
        if better.size < keys.shape[0]:
            keys, y = keys[better], y[better]
        piece = self._keys.shape[0] - self.size
        if self._rows.shape[0] < self._keys.shape[0]:
            grown = np.empty((self._keys.shape[0], self.columns))
            grown[: self.filled] = self._rows[: self.filled]
            self._rows = grown
        for start in range(0, keys.shape[0], piece):
            self._append(keys[start : start + piece], y[start : start + piece])

    def _append(self, keys, y) -> None:
        if self.filled + keys.shape[0] > self._keys.shape[0]:
            self._compact()
        stop = self.filled + keys.shape[0]
        self._rows[self.filled : stop] = y
        self._keys[self.filled : stop] = keys
        self.filled = stop

    def _compact(self) -> None:
        """Keeps the `size` largest keys (moving only the rows that must)."""
        if self.filled <= self.size:
            return
        keys = self._keys[: self.filled]
        cut = self.filled - self.size
        order = np.argpartition(keys, cut)
        leave, keep = order[:cut], order[cut:]
        self.threshold = max(self.threshold, float(keys[leave].max()))
        holes = leave[leave < self.size]  # slots of the front to refill
        movers = keep[keep >= self.size]
        self._rows[holes] = self._rows[movers]
        self._keys[holes] = self._keys[movers]
        self.filled = self.size

    def merge(self, other: "RowSample") -> "RowSample":
        self._take(other.keys, other.rows)
        return self

    @property
    def nbytes(self) -> int:
        """Bytes the full sample holds."""
        return self.size * (self.columns + 1) * 8

    def to_arrays(self) -> Arrays:
        return {"keys": self.keys.copy(), "rows": self.rows.copy(),
                "size": np.array([self.size])}

    @classmethod
    def from_arrays(cls, arrays: Arrays, columns: int) -> "RowSample":
        sample = cls(int(arrays["size"][0]), columns)
        rows = np.array(arrays["rows"], np.float64).reshape(-1, columns)
        sample._take(np.array(arrays["keys"], np.float64).reshape(-1), rows)
        return sample

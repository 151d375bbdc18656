"""What pass 1 of the exact order statistics learns, and how batches are cut.

`Summary` holds, per column over the rows of positive weight, the rows, total
weight, min and max and two checksums that later passes compare with, so that
data that change between passes are an error, not a wrong number. `Size` is
what the shards tell each other before deciding whether their union fits in
memory; `InMemory` the rows pass 1 kept when it did.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats.state import Arrays
from keras_biasinit.stats.state import scalar

Batch = Tuple[np.ndarray, Optional[np.ndarray]]
#: `in_memory_bytes(rows, columns, weighted)`: what the in-memory solve needs.
SizeRule = Callable[[int, int, bool], int]


def chunks(values, weights, rows_per_chunk: int) -> Iterator[Batch]:
    """A batch in chunks of at most `rows_per_chunk` rows."""
    n = values.shape[0] if np.ndim(values) else 1
    if n <= rows_per_chunk:
        yield values, weights
        return
    for start in range(0, n, rows_per_chunk):
        stop = start + rows_per_chunk
        yield values[start:stop], None if weights is None else weights[start:stop]


def width(values) -> int:
    """Columns of a batch: every entry after the batch axis."""
    shape = np.shape(values)
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def check_width(columns: Optional[int], values) -> int:
    found = width(values)
    if columns is not None and found != columns:
        raise ValueError(
            f"Batches have different widths: {columns} columns, then {found}. "
            "Every batch must have the same target shape."
        )
    return found


def rows_of(values) -> int:
    shape = np.shape(values)
    return int(shape[0]) if shape else 1


@dataclasses.dataclass
class Summary:
    """Per column, over rows of positive weight: what pass 1 learned."""

    rows: int = 0
    weighted: bool = False
    weight: float = 0.0
    kmin: Optional[np.ndarray] = None  # uint64 keys
    kmax: Optional[np.ndarray] = None
    checksum: Optional[np.ndarray] = None  # sum w * y
    scale: Optional[np.ndarray] = None  # sum w * |y|

    def update(self, y: np.ndarray, w: Optional[np.ndarray]) -> "Summary":
        """Adds rows `y` (float64, (n, d), finite) with weights `w` or None."""
        part = Summary(rows=y.shape[0], weighted=w is not None)
        if w is not None:
            positive = w > 0
            if not positive.all():
                y, w = y[positive], w[positive]
        if y.shape[0]:
            part.kmin, part.kmax = to_keys(y.min(axis=0)), to_keys(y.max(axis=0))
            # Sums of values near the float64 limit may overflow: the checksum
            # is then inf (or NaN) in every pass alike (see `check_same_data`).
            with np.errstate(over="ignore", invalid="ignore"):
                if w is None:
                    part.weight = float(y.shape[0])
                    part.checksum, part.scale = y.sum(axis=0), np.abs(y).sum(axis=0)
                else:
                    part.weight = float(w.sum())
                    part.checksum, part.scale = w @ y, w @ np.abs(y)
        return self.merge(part)

    def merge(self, other: "Summary") -> "Summary":
        self.rows += other.rows
        self.weighted |= other.weighted
        self.weight += other.weight
        if other.kmin is None:
            return self
        if self.kmin is None:
            self.kmin, self.kmax = other.kmin, other.kmax
            self.checksum, self.scale = other.checksum, other.scale
            return self
        self.kmin = np.minimum(self.kmin, other.kmin)
        self.kmax = np.maximum(self.kmax, other.kmax)
        with np.errstate(over="ignore", invalid="ignore"):
            self.checksum = self.checksum + other.checksum
            self.scale = self.scale + other.scale
        return self

    def to_arrays(self, prefix: str = "") -> Arrays:
        empty = np.zeros(0)
        pick = {name: getattr(self, name) for name in
                ("kmin", "kmax", "checksum", "scale")}
        arrays = {k: empty if v is None else v for k, v in pick.items()}
        arrays.update(rows=scalar(self.rows), weighted=scalar(int(self.weighted)),
                      weight=scalar(self.weight))
        return {prefix + k: v for k, v in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str = "") -> "Summary":
        def vector(name, dtype):
            value = np.asarray(arrays[prefix + name]).astype(dtype)
            return value if value.size else None

        return cls(
            rows=int(arrays[prefix + "rows"][0]),
            weighted=bool(arrays[prefix + "weighted"][0]),
            weight=float(arrays[prefix + "weight"][0]),
            kmin=vector("kmin", np.uint64), kmax=vector("kmax", np.uint64),
            checksum=vector("checksum", np.float64),
            scale=vector("scale", np.float64),
        )

    def check_same_data(self, other: "Summary", name: str) -> None:
        """Raises if a later pass read different data than pass 1."""
        same = (
            other.rows == self.rows
            and abs(other.weight - self.weight) <= 1e-9 * self.weight
            and np.array_equal(other.kmin, self.kmin)
            and np.array_equal(other.kmax, self.kmax)
            and _same_sums(other.checksum, self.checksum, self.scale)
        )
        if not same:
            raise ValueError(
                f"The data changed between passes: the exact {name} of data larger "
                "than `memory_budget` needs a few passes over it, and a later pass "
                "read different values (or a different number of rows) than the "
                "first. Make the target deterministic (no random augmentation of "
                "it in the pipeline; a shuffled order is fine), or raise "
                "`memory_budget` so the data fits in one pass."
            )


def _same_sums(seen: np.ndarray, first: np.ndarray, scale: np.ndarray) -> bool:
    """Whether checksums `seen` match pass 1's `first` to rounding (`scale` is
    the sum of `w * |y|`). A sum that overflowed float64 (inf, or NaN where
    both signs did) matches the same non-finite value: there the checksum
    cannot tell, and rows, weight, min and max still do."""
    with np.errstate(invalid="ignore"):
        close = np.abs(seen - first) <= 1e-9 * scale + 1e-300
    overflowed = ~np.isfinite(scale) & (
        (seen == first) | (np.isnan(seen) & np.isnan(first)))
    return bool(np.all(close | overflowed))


@dataclasses.dataclass
class InMemory:
    """Pass 1 kept every row: `y` float64 `(n, d)` and `w` (None: unweighted)."""

    y: np.ndarray
    w: Optional[np.ndarray]
    rows: int
    held_bytes: int

    @property
    def weighted(self) -> bool:
        return self.w is not None


@dataclasses.dataclass
class Size:
    """Rows and columns of every shard's pass 1: decides whether the union fits
    in memory before any shard sends its rows. A state of the protocol."""

    rows: int = 0
    columns: int = 0
    weighted: bool = False
    reiterable: bool = True  # every shard's data can be read again

    def merge(self, other: "Size") -> "Size":
        if self.columns and other.columns and self.columns != other.columns:
            raise ValueError(
                f"Batches have different widths: {self.columns} columns, then "
                f"{other.columns}. Every batch must have the same target shape."
            )
        self.rows += other.rows
        self.columns = self.columns or other.columns
        self.weighted |= other.weighted
        self.reiterable &= other.reiterable
        return self

    def to_arrays(self) -> Arrays:
        return {"size": np.array([self.rows, self.columns, int(self.weighted),
                                  int(self.reiterable)])}

    def from_arrays(self, arrays: Arrays) -> "Size":
        rows, columns, weighted, reiterable = (int(v) for v in arrays["size"])
        return Size(rows, columns, bool(weighted), bool(reiterable))

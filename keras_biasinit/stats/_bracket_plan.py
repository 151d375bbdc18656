"""The plan and the result of a bracket pass (`_bracket`).

A `BracketPlan` gives each column of a wide target a value bracket and room
for its values; `place` writes values grouped by column into those segments;
a `BracketResult` is what the merged pass measured, and
`check_bracket_pass` that it measured the data pass 1 read.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from keras_biasinit.stats._keys import from_keys

#: Bytes per value of room: the value and (weighted) its weight, float64.
ROOM_BYTES, ROOM_BYTES_WEIGHTED = 8, 16
#: Bytes per element of a chunk of rows: three masks, a clipped copy (and its
#: float64 difference), a float64 cast.
CHUNK_BYTES = 32


class BracketPlan:
    """Per column `lo <= hi` (float64; `+inf` both: not in this pass),
    `room`, the values its segment may hold, and pass 1's `anchor` and
    `centred = sum w (y - anchor)`: the values inside are summed alike."""

    windows, bins = 1, 1  # for the driver's accounting of reading the result

    def __init__(self, lo: np.ndarray, hi: np.ndarray, room: np.ndarray,
                 anchor: np.ndarray, centred: np.ndarray) -> None:
        self.lo, self.hi, self.anchor, self.centred = lo, hi, anchor, centred
        self.columns = lo.shape[0]
        self.active = ~(np.isposinf(lo) & np.isposinf(hi))
        self.room = np.where(self.active, room, 0).astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.room)])
        # float32 ends where they are float32 values: float32 batches then
        # compare without a cast.
        lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
        exact = np.array_equal(lo32, lo) and np.array_equal(hi32, hi)
        self.lo32, self.hi32 = (lo32, hi32) if exact else (None, None)

    def new_state(self, first, meter, name, hold=True):
        from keras_biasinit.stats._bracket import BracketState

        return BracketState(self, first, meter, name, hold=hold)


class BracketResult(NamedTuple):
    """Per column (arrays `(d,)`): the rows and weight below `lo` and
    inside, `sum w (y - lo)` below `lo`, `sum w (y - anchor)` inside, the rows
    above `hi`, and the values inside (`values[starts[j]:starts[j] +
    inside[j]]`, unsorted; `weights` alike, or None). `lost`: columns whose
    values outgrew their room (their segments are incomplete)."""

    below: np.ndarray  # int64
    below_weight: np.ndarray
    below_deviation: np.ndarray  # sum w (y - lo) below lo
    inside: np.ndarray  # int64
    inside_weight: np.ndarray
    inside_centred: np.ndarray  # sum w (y - anchor) inside
    above: np.ndarray  # int64: rows above hi
    values: np.ndarray
    weights: object
    starts: np.ndarray
    lost: np.ndarray  # bool


def place(values, weights, counts, starts, fill, store, store_w) -> None:
    """Appends `values` (grouped by column, `counts` each) to the columns'
    segments of `store` (which begin at `starts`, hold `fill` values)."""
    ends = np.cumsum(counts)
    shift = starts[:-1] + fill - (ends - counts)
    at = np.repeat(shift, counts) + np.arange(values.shape[0])
    store[at] = values
    if store_w is not None:
        store_w[at] = weights


def check_bracket_pass(state, result) -> None:
    """Raises if the bracket pass read other data than pass 1: its rows and
    weight, and per column the rows below and above and `sum w y` below `lo`
    and above `hi` (pass 1's minus the rest) within their value ranges."""
    first, plan = state.first, state.plan
    same = (state.rows == first.rows
            and abs(state.weight_sum - first.weight) <= 1e-9 * first.weight)
    if same:
        cols = plan.active & ~result.lost
        low, high = from_keys(first.kmin), from_keys(first.kmax)
        weight, anchor = result.below_weight, plan.anchor
        with np.errstate(invalid="ignore"):
            below_centred = result.below_deviation + weight * (plan.lo - anchor)
            above_centred = plan.centred - below_centred - result.inside_centred
        above_weight = first.weight - weight - result.inside_weight
        tol = 1e-9 * first.scale + 1e-300
        with np.errstate(invalid="ignore"):
            ok_below = ((result.below_deviation >= (low - plan.lo) * weight - tol)
                        & (result.below_deviation <= tol)
                        & (state.low == low))
            ok_above = ((above_centred >= (plan.hi - anchor) * above_weight - tol)
                        & (above_centred <= (high - anchor) * above_weight + tol))
        ok_below |= (result.below == 0) & (state.low >= low)
        ok_above |= (result.above == 0) & (np.abs(above_centred) <= tol)
        ok = (result.below >= 0) & (result.above >= 0) & ok_below & ok_above
        same = bool(ok[cols].all())
    if not same:
        raise ValueError(
            f"The data changed between passes: the exact {state.name} of data "
            "larger than `memory_budget` needs a few passes over it, and a "
            "later pass read different values (or a different number of rows) "
            "than the first. Make the target deterministic (no random "
            "augmentation of it in the pipeline; a shuffled order is fine), or "
            "raise `memory_budget` so the data fits in one pass."
        )

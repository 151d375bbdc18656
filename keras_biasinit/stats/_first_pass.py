"""Pass 1 of the exact order statistics: buffer the rows, or summarise them.

While the in-memory solve of the rows seen so far fits `memory_budget`, the
batches are buffered; past that (or when told, because the union of all shards
would not fit) they are summarised (`_summary.Summary`), into the statistic's
own pass-1 state where it has one (`radix`: a radix histogram, `_radix_state`,
or for wide targets a row sample, `_wide_first`).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np

from keras_biasinit.stats._budget import CHUNK_BYTES_PER_ELEMENT
from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._budget import chunk_rows
from keras_biasinit.stats._budget import minimum_budget
from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._summary import InMemory
from keras_biasinit.stats._summary import Size
from keras_biasinit.stats._summary import SizeRule
from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._summary import check_width
from keras_biasinit.stats._summary import chunks
from keras_biasinit.stats._summary import rows_of
from keras_biasinit.stats.state import Arrays
from keras_biasinit.stats.state import scalar


class FirstPass:
    """The state of pass 1 (see the module docstring).

    Args:
        name: the statistic's name, for error messages.
        meter: the `MemoryMeter` of the computation.
        in_memory_bytes: what the in-memory solve of `rows` rows needs.
        reiterable: whether the data can be read again (if not, data over the
            budget are a ValueError: the multi-pass solve cannot run).
    """

    def __init__(self, *, name: str, meter: MemoryMeter,
                 in_memory_bytes: SizeRule, reiterable: bool = True,
                 radix: Optional[Callable] = None) -> None:
        self.name = name
        #: `radix(columns, meter, name, hold)`: the statistic's pass-1 state to
        #: summarise into (a radix histogram, `_radix`; a `_wide_first`
        #: sample), or None.
        self.radix = radix
        self.histogram = None  # that `RadixState`, once summarising
        self.meter = meter
        self.in_memory_bytes = in_memory_bytes
        self.reiterable = reiterable
        self.summary = Summary()
        self.columns: Optional[int] = None
        self.ys: Optional[List[np.ndarray]] = []  # None once summarising
        self.ws: List[Optional[np.ndarray]] = []
        self.held = 0

    @property
    def buffering(self) -> bool:
        return self.ys is not None

    def fits(self, rows: int, weighted: bool) -> bool:
        columns = self.columns or 1
        return self.in_memory_bytes(rows, columns, weighted) <= self.meter.budget

    def size(self) -> Size:
        if self.histogram is not None:
            self.summary = self.histogram.summary
        return Size(self.summary.rows, self.columns or 0, self.summary.weighted,
                    self.reiterable)

    def update(self, values, weights=None) -> "FirstPass":
        self.columns = check_width(self.columns, values)
        self.summary.weighted |= weights is not None
        if self.buffering and not self.fits(self.summary.rows + rows_of(values),
                                            self.summary.weighted):
            self.stop_buffering()
        if not self.buffering:
            step = getattr(self.histogram, "rows_per_chunk", None) or chunk_rows(
                self.meter.budget, self.columns)  # its own, if it has one
            for chunk, chunk_w in chunks(values, weights, step):
                if self.histogram is not None:
                    self.histogram.update(chunk, chunk_w)
                    continue
                y = as_columns(chunk)
                self.summary.update(y, check_weights(chunk_w, y.shape[0]))
            return self
        y = as_columns(values)
        w = check_weights(weights, y.shape[0])
        self.ys.append(y)
        self.ws.append(w)
        self.summary.rows += y.shape[0]
        self._hold(y.nbytes + (0 if w is None else w.nbytes))
        return self

    def stop_buffering(self) -> None:
        """Summarises the buffered rows and every later batch (multi-pass)."""
        if not self.buffering:
            return
        columns = self.columns or 1
        if not self.reiterable:
            raise ValueError(
                f"The data do not fit in `memory_budget={self.meter.budget}` bytes "
                f"for an exact {self.name}, which then needs a few passes, but they "
                "come from a one-shot iterator (e.g. a generator) that cannot "
                "be read again. Pass a re-iterable dataset (a tf.data.Dataset, "
                "an array, a list of batches), or raise `memory_budget`."
            )
        if self.meter.budget < minimum_budget(columns):
            raise ValueError(
                f"`memory_budget` is too small for {columns} target column(s): "
                f"the multi-pass {self.name} needs at least "
                f"{minimum_budget(columns)} bytes. "
                f"Received: memory_budget={self.meter.budget}"
            )
        step = chunk_rows(self.meter.budget, columns)
        self.meter.hold(step * columns * CHUNK_BYTES_PER_ELEMENT)
        summary = Summary(weighted=self.summary.weighted)
        self.histogram = (self.radix(columns, self.meter, self.name)
                          if self.radix else None)
        for yb, wb in zip(self.ys, self.ws):
            for y, w in chunks(yb, wb, step):
                if self.histogram is None:
                    summary.update(y, w)
                else:
                    self.histogram.update(y, w)
        if self.histogram is not None:
            self.histogram.weighted |= self.summary.weighted
            summary = self.histogram.summary
        self.summary, self.ys, self.ws = summary, None, []
        self.meter.release(self.held)
        self.held = 0

    def merge(self, other: "FirstPass") -> "FirstPass":
        if other.columns is None:
            return self
        self.columns = check_width(self.columns, np.zeros((0, other.columns)))
        weighted = self.summary.weighted or other.summary.weighted
        rows = self.summary.rows + other.summary.rows
        if self.buffering and other.buffering and self.fits(rows, weighted):
            self.ys += other.ys
            self.ws += other.ws
            self.summary.rows, self.summary.weighted = rows, weighted
            self._hold(other.held)
            return self
        other.stop_buffering()
        self.stop_buffering()
        if self.histogram is not None:
            self.histogram.merge(other.histogram)
            return self
        self.summary.merge(other.summary)
        return self

    def to_arrays(self) -> Arrays:
        if self.histogram is not None:
            self.summary = self.histogram.summary
        arrays = self.summary.to_arrays()
        arrays["columns"] = scalar(self.columns or 0)
        arrays["buffering"] = scalar(int(self.buffering))
        y, w = self._buffer() if self.buffering else (np.zeros((0, 1)), None)
        arrays["y"] = y
        arrays["w"] = np.zeros(0) if w is None else w
        if self.histogram is not None:
            arrays.update(("radix_" + k, v) for k, v in
                          self.histogram.to_arrays().items())
        return arrays

    def from_arrays(self, arrays: Arrays) -> "FirstPass":
        state = FirstPass(name=self.name, meter=self.meter,
                          in_memory_bytes=self.in_memory_bytes,
                          reiterable=self.reiterable, radix=self.radix)
        state.columns = int(arrays["columns"][0]) or None
        state.summary = Summary.from_arrays(arrays)
        if not arrays["buffering"][0]:
            state.ys = None
            if any(k[:6] == "radix_" for k in arrays):
                radix = {k[6:]: v for k, v in arrays.items() if k[:6] == "radix_"}
                state.histogram = self.radix(state.columns, self.meter, self.name,
                                             hold=False).from_arrays(radix)
                state.summary = state.histogram.summary
        elif state.summary.rows:
            y = np.array(arrays["y"], np.float64).reshape(-1, state.columns)
            w = np.array(arrays["w"], np.float64) if state.summary.weighted else None
            state.ys, state.ws = [y], [w]
            state._hold(y.nbytes + (0 if w is None else w.nbytes))
        return state

    def result(self):
        """`InMemory` if every row was kept, else the `Summary`."""
        if self.histogram is not None:
            self.summary = self.histogram.result().summary
            self.summary.radix = self.histogram
        if self.summary.rows == 0:
            raise ValueError(
                f"The data is empty: there is no row to take the {self.name} of."
            )
        if self.buffering:
            y, w = self._buffer()
            return InMemory(y, w, self.summary.rows, self.held)
        if self.summary.weight <= 0:
            raise ValueError("All sample weights are 0: there is nothing to fit.")
        return self.summary

    def _buffer(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        y = self.ys[0] if len(self.ys) == 1 else np.concatenate(self.ys)
        if not self.summary.weighted:
            return y, None
        ws = [np.ones(a.shape[0]) if b is None else b for a, b in zip(self.ys, self.ws)]
        return y, ws[0] if len(ws) == 1 else np.concatenate(ws)

    def _hold(self, nbytes: int) -> None:
        self.held += nbytes
        self.meter.hold(nbytes)


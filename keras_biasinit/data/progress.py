"""Progress of a pass, shown the way `Model.fit` shows an epoch.

What is counted is what the user knows: the batches of a batched input (a
batched `tf.data.Dataset`, a `PyDataset`, a list or generator of batches), or
the examples of an unbatched dataset or of an array. The total is shown when it
is known (`Dataset.cardinality()`, `len()`), also when the pass itself reads
the data in larger, merged batches. Passes after the first are labelled, as
`fit` labels epochs:

    Pass 2
    100/100 ━━━━━━━━━━━━━━━━━━━━ 1s 5ms/batch

`verbose`: 0 is silent, 1 is a live bar, 2 is one line per pass (printed when
the pass ends, like `fit(verbose=2)` per epoch; where the total was unknown,
the line gives the count read as the total, since Keras's one-line form needs
one). `"auto"` is 1 for data that is
streamed (a `tf.data.Dataset`, an iterable of batches) and 0 for an array or a
single `(x, y)` / dict element held in memory, which is read in one step.
"""

from __future__ import annotations

from typing import Optional, Union

from keras.utils import Progbar

try:  # where Keras prints its own progress (respects interactive logging)
    from keras.src.utils.io_utils import print_msg
except ImportError:  # pragma: no cover - a Keras without that module
    print_msg = print

__all__ = ["PassProgress", "resolve_verbose"]


def resolve_verbose(verbose: Union[str, int], streamed: bool) -> int:
    """0, 1 or 2; `"auto"` is 1 for streamed data, 0 for an in-memory array."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1 if streamed else 0
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(
            f'`verbose` must be "auto", 0, 1 or 2. Received: verbose={verbose!r}'
        )
    return int(verbose)


class PassProgress:
    """The progress bar of one pass.

    Args:
        total: the number of units one pass reads, or None if unknown.
        unit: what is counted, `"batch"` or `"example"`.
        verbose: 0, 1 or 2.
        pass_number: 1 for the first pass over the data, 2 for the next, ...
    """

    def __init__(self, total: Optional[int], unit: str, verbose: int,
                 pass_number: int) -> None:
        self.done = 0
        self._total = total
        self._bar = None
        if verbose:
            if pass_number > 1:
                print_msg(f"Pass {pass_number}")
            self._bar = Progbar(total, verbose=verbose, unit_name=unit)

    def add(self, units: int) -> None:
        """Counts `units` more batches or examples as read."""
        self.done += units
        if self._bar is not None:
            self._bar.update(self.done)  # finalizes itself at a known total

    def finish(self) -> None:
        """Ends the bar (verbose=2 prints its line now) unless it already ended."""
        if self._bar is None:
            return
        if self._total is None and self._bar.verbose == 2:
            # Keras's one-line form needs a total; at the end it is known.
            self._bar.target = self.done
        if self._total is None or self.done < self._total:
            self._bar.update(self.done, finalize=True)

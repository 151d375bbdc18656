"""A pass that does two kinds of work at once: radix bins for some columns
(`_radix_state`), the general windows (`_pass_state`) for the others."""

from __future__ import annotations

from typing import NamedTuple, Optional

from keras_biasinit.stats._pass_state import PassState
from keras_biasinit.stats._plan import Plan
from keras_biasinit.stats._radix import RadixPlan
from keras_biasinit.stats.state import Arrays


class MixedPlan:
    """A radix plan and a general `Plan` (either may be None) for one pass."""

    def __init__(self, radix: Optional[RadixPlan], general: Optional[Plan]) -> None:
        self.radix, self.general = radix, general
        self.windows = general.windows if general is not None else 1
        # (reading a radix window takes about half what a general one does)
        self.bins = general.bins if general is not None else radix.bins // 2

    def new_state(self, first, meter, name, hold=True) -> "MixedState":
        return MixedState(self, first, meter, name, hold=hold)


class MixedResult(NamedTuple):
    radix: Optional[object]  # the flushed, checked `RadixState`
    general: Optional[object]  # the `PassResult`


class MixedState:
    """Both parts of a `MixedPlan`'s pass; each merges as it does alone."""

    def __init__(self, plan: MixedPlan, first, meter, name, *, hold=True) -> None:
        self.plan, self.first, self.meter, self.name = plan, first, meter, name
        self.radix = (None if plan.radix is None
                      else plan.radix.new_state(first, meter, name, hold=hold))
        self.general = (None if plan.general is None
                        else PassState(plan.general, first, meter, name, hold=hold))

    def _parts(self):
        return [p for p in (self.radix, self.general) if p is not None]

    def update(self, values, weights=None) -> "MixedState":
        for part in self._parts():
            part.update(values, weights)
        return self

    def merge(self, other: "MixedState") -> "MixedState":
        if self.radix is not None:
            self.radix.merge(other.radix)
        if self.general is not None:
            self.general.merge(other.general)
        return self

    def to_arrays(self) -> Arrays:
        arrays = {}
        for tag, part in (("r_", self.radix), ("g_", self.general)):
            if part is not None:
                arrays.update((tag + k, v) for k, v in part.to_arrays().items())
        return arrays

    def from_arrays(self, arrays: Arrays) -> "MixedState":
        state = MixedState(self.plan, self.first, self.meter, self.name, hold=False)
        for tag in ("r_", "g_"):
            part = state.radix if tag == "r_" else state.general
            if part is not None:
                mine = {k[2:]: v for k, v in arrays.items() if k[:2] == tag}
                part = part.from_arrays(mine)
                if tag == "r_":
                    state.radix = part
                else:
                    state.general = part
        return state

    def result(self) -> MixedResult:
        return MixedResult(None if self.radix is None else self.radix.result(),
                           None if self.general is None else self.general.result())


def new_pass_state(plan, first, meter, name, *, hold: bool = True):
    """The state of a pass after pass 1 that follows `plan`."""
    if hasattr(plan, "new_state"):
        return plan.new_state(first, meter, name, hold=hold)
    return PassState(plan, first, meter, name, hold=hold)

"""The table: (Keras loss, output activation) -> the state that finds its best
constant, and what each initializer was made for.

| loss | output activation | best constant |
|---|---|---|
| (sparse) categorical cross-entropy | softmax, or linear + from_logits | log priors |
| KL divergence | softmax | log of the mean label distribution |
| binary cross-entropy | sigmoid, or linear + from_logits | prior logit |
| binary / categorical focal | sigmoid / softmax (or linear + logits) | minimiser |
| MSE, MAE, Huber, log-cosh, MSLE, MAPE | linear | mean, median, ... |
| Poisson | exponential, softplus, linear | link of the mean |

Label smoothing, `from_logits`, focal `gamma` / `alpha` /
`apply_class_balancing` and Huber's `delta` are read from the loss; the
formulas are in `classification` and `regression`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

import numpy as np

from keras_biasinit import initializers as kinit
from keras_biasinit.best_constant import classification
from keras_biasinit.best_constant import regression
from keras_biasinit.best_constant.spec import REDUCTIONS
from keras_biasinit.best_constant.spec import LossSpec

_SOFTMAX = ("softmax", "linear")  # linear: with from_logits=True
_SIGMOID = ("sigmoid", "linear")


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of the table: a loss, the activations it takes, its state.

    `start(spec, units, activation, name, memory_budget, reiterable)` makes
    the output's state, a state of the statistics protocol
    (`keras_biasinit.stats.state`): one pass updates it with
    `update(values, weights)`, the workers' states merge, and its `result()`
    is the initializer (with `expected_loss`). An exact order statistic's
    state (`searched(state)`) is its search's pass 1 instead: its
    `finish(batches, reducer)` merges and, if needed, reads the output again.
    """

    kinds: Tuple[str, ...]
    activations: Tuple[str, ...]
    constant: str
    start: Callable
    logits: bool = False  # linear output only with from_logits=True

    def accepts(self, spec: LossSpec, activation: str) -> bool:
        if spec.kind not in self.kinds or activation not in self.activations:
            return False
        if self.logits:
            return bool(spec.params.get("from_logits")) == (activation == "linear")
        return True


TABLE = (
    Rule(("categorical_crossentropy", "sparse_categorical_crossentropy"), _SOFTMAX,
         "log of the (smoothed) class priors", classification._Counts, logits=True),
    Rule(("kl_divergence",), ("softmax",), "log of the mean label distribution",
         classification._KLSums),
    Rule(("binary_crossentropy",), _SIGMOID, "prior logit per output",
         classification._Counts, logits=True),
    Rule(("binary_focal_crossentropy",), _SIGMOID,
         "logit of the focal loss's minimiser", classification._FocalValues,
         logits=True),
    Rule(("categorical_focal_crossentropy",), _SOFTMAX,
         "log of the focal loss's minimiser", classification._Counts, logits=True),
    Rule(("mean_squared_error",), ("linear",), "mean", regression._Moments),
    Rule(("mean_absolute_error",), ("linear",), "median", regression._Searched),
    Rule(("huber",), ("linear",), "Huber location", regression._Searched),
    Rule(("log_cosh",), ("linear",), "root of sum w tanh(c - y)",
         regression._LogCosh),
    Rule(("mean_squared_logarithmic_error",), ("linear",),
         "expm1(mean(log1p(max(y, eps))))", regression._Moments),
    Rule(("mean_absolute_percentage_error",), ("linear",),
         "weighted median, weights 1 / max(|y|, eps)", regression._Searched),
    Rule(("poisson",), ("exponential", "softplus", "linear"),
         "log mean / softplus^-1(mean) / mean", regression._Moments),
)


def searched(state) -> bool:
    """Whether `state` (made by a `Rule`) is an exact search's pass 1, which
    `finish(batches, reducer)` ends, rather than a one-pass state."""
    return isinstance(state, regression._Searched)


def _pair(rule: Rule) -> str:
    acts = " or ".join(
        f"{a} (from_logits=True)" if rule.logits and a == "linear" else a
        for a in rule.activations
    )
    return f"{' / '.join(rule.kinds)} with {acts}: {rule.constant}"


#: One line per known (loss, activation) pair, for error messages and docs.
KNOWN_PAIRS = tuple(_pair(rule) for rule in TABLE)


def rule_for(spec: LossSpec, activation: str, output: str) -> Rule:
    """The row for `spec` and `activation`; a ValueError naming `output`, the
    loss and the activation, and listing the known pairs, if there is none."""
    problem = None
    if spec.kind is not None and spec.reduction not in REDUCTIONS:
        problem = (f"its reduction is {spec.reduction!r}; the best constant is "
                   f"computed for {' or '.join(map(repr, REDUCTIONS))}")
    elif spec.params.get("axis", -1) != -1:
        problem = "`axis` other than -1 is not supported"
    else:
        for rule in TABLE:
            if rule.accepts(spec, activation):
                return rule
    known = "\n  ".join(KNOWN_PAIRS)
    detail = f" ({problem})" if problem else ""
    raise ValueError(
        f"Output '{output}': no known best constant for loss {spec.describe()} with "
        f"a '{activation}' output activation{detail}. Known pairs:\n  {known}\n"
        "For a custom loss, pass `loss=` naming the Keras loss it behaves like."
    )


def made_for(initializer) -> Optional[str]:
    """The loss an initializer of this package was made for, in words; None for
    other initializers. E.g. a sigmoid `ClassPriorBias`: "binary_crossentropy"."""
    if isinstance(initializer, kinit.ClassPriorBias):
        return ("binary_crossentropy" if initializer.activation == "sigmoid"
                else "categorical_crossentropy")
    if isinstance(initializer, kinit.FocalBias):
        kind = ("binary_focal_crossentropy" if initializer.activation == "sigmoid"
                else "categorical_focal_crossentropy")
        return (f"{kind}(gamma={initializer.gamma!r}, alpha={initializer.alpha!r}, "
                f"apply_class_balancing={initializer.apply_class_balancing!r})")
    names = {kinit.MeanBias: "mean_squared_error",
             kinit.MedianBias: "mean_absolute_error", kinit.LinkBias: "poisson"}
    for cls, name in names.items():
        if isinstance(initializer, cls):
            return name
    if isinstance(initializer, kinit.HuberBias):
        return f"huber(delta={initializer.delta!r})"
    if isinstance(initializer, kinit.ConstantBias):
        return initializer.loss
    return None


def matches(initializer, spec: LossSpec) -> bool:
    """Whether `initializer` was made for the loss `spec`, so that its
    `expected_loss` is that loss's (parameters included: Huber's `delta`, the
    focal `gamma` / `alpha` / `apply_class_balancing` / `label_smoothing`)."""
    kind, p = spec.kind, spec.params
    if isinstance(initializer, kinit.ClassPriorBias):
        if initializer.activation == "sigmoid":
            return kind == "binary_crossentropy"
        return kind in ("categorical_crossentropy", "sparse_categorical_crossentropy",
                        "kl_divergence")
    if isinstance(initializer, kinit.FocalBias):
        binary = initializer.activation == "sigmoid"
        if kind != ("binary_focal_crossentropy" if binary
                    else "categorical_focal_crossentropy"):
            return False
        same = (float(p["gamma"]) == initializer.gamma
                and list(np.ravel(p["alpha"])) == list(np.ravel(initializer.alpha))
                and float(p["label_smoothing"]) == initializer.label_smoothing)
        return same and (not binary or bool(p["apply_class_balancing"])
                         == initializer.apply_class_balancing)
    if isinstance(initializer, kinit.HuberBias):
        return kind == "huber" and float(p["delta"]) == initializer.delta
    if isinstance(initializer, kinit.ConstantBias):
        return kind == initializer.loss
    names = {kinit.MeanBias: "mean_squared_error",
             kinit.MedianBias: "mean_absolute_error", kinit.LinkBias: "poisson"}
    return any(isinstance(initializer, cls) and kind == name
               for cls, name in names.items())

"""Writing what `verify_loss_at_init` measured, in words.

`diagnose(numbers, context)` turns the measured parts of the gap (see
`keras_biasinit.verify`) into an `InitLossCheck` whose `message` says what is
off and what to do: scale the final kernel down, compare with the
regularization added, or set the bias for the compiled loss with
`adapt_output_bias` when it was made for another one.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

__all__ = ["InitLossCheck", "diagnose", "diagnose_outputs"]

_HINT = (
    "ClassPriorBias for cross-entropy (activation matching the output layer's "
    "softmax or sigmoid), MeanBias for mean squared error, MedianBias for mean "
    "absolute error, HuberBias with the loss's own `delta` for Huber"
)
FIX = "`kbi.adapt_output_bias(model, data)`"


@dataclasses.dataclass(frozen=True)
class InitLossCheck:
    """What `verify_loss_at_init` measured, and what to do about it.

    `str()` gives `message`, the diagnosis in words. The parts add up:
    `gap = kernel_part + bias_part + regularization`.

    Attributes:
        measured: the model's loss before training (as `model.evaluate`
            reports it: inference mode, regularization losses included).
        expected: the loss it should have (the output bias initializer's
            `expected_loss`, the best constant's loss for the compiled loss
            when the bias was made for another loss, or `expected=`).
        gap: `measured - expected`.
        zero_kernel_loss: the loss with the output layer's kernel set to zero,
            i.e. the loss of the bias alone (regularization included).
        kernel_part: what the random final kernel adds to the data loss
            (regularization excluded).
        bias_part: how far the data loss of the bias alone is from
            `expected` (regularization excluded).
        rtol: the relative tolerance `ok` was judged with.
        ok: whether `|gap| <= rtol * |expected|`.
        message: the diagnosis and what to do, in words.
        regularization: the weight-regularization losses (kernel and bias
            regularizers) included in `measured`.
        loss: the compiled loss of the output, as `kind(params)`.
        made_for: the loss the bias initializer was made for, if it is one
            of this package's (e.g. `"binary_crossentropy"` for a sigmoid
            `ClassPriorBias`), else None.
        output: the name of the output checked, if one.
        outputs: with several outputs checked, each one's own check by output
            name (this check is then the total, `sum_i loss_weight_i *
            loss_i`); else None.
    """

    measured: float
    expected: float
    gap: float
    zero_kernel_loss: float
    kernel_part: float
    bias_part: float
    rtol: float
    ok: bool
    message: str
    regularization: float = 0.0
    loss: Optional[str] = None
    made_for: Optional[str] = None
    output: Optional[str] = None
    outputs: Optional[Dict[str, "InitLossCheck"]] = None

    def __str__(self) -> str:
        return self.message


@dataclasses.dataclass
class _Context:
    """What the message needs besides the numbers."""

    layer_name: str
    loss: str  # as the user wrote it, e.g. 'mse'
    spec: Optional[str]  # as kind(params), e.g. huber(delta=1.0)
    initializer: str
    made_for: Optional[str]
    mismatch: bool
    bias_is_initial: Optional[bool]
    how: str = "initializer"  # or "table", "given": where `expected` came from
    output: Optional[str] = None


def _summary(n: dict, ctx: _Context) -> List[str]:
    relative = f", {n['gap'] / n['expected']:+.1%}" if n["expected"] else ""
    lines = [
        f"Loss at init: {n['measured']:.6g}, expected {n['expected']:.6g} "
        f"(gap {n['gap']:+.4g}{relative}; rtol={n['rtol']:g})."
    ]
    if n["ok"]:
        lines.append(
            f"OK: the output bias of layer '{ctx.layer_name}' predicts the best "
            f"constant and its kernel adds {n['kernel_part']:+.3g}. Nothing to fix."
        )
    else:
        lines.append(
            f"NOT OK. With the kernel of layer '{ctx.layer_name}' set to zero the "
            f"loss is {n['zero_kernel_loss']:.6g}: the kernel adds "
            f"{n['kernel_part']:+.4g} and the bias is {n['bias_part']:+.4g} away "
            "from the expected loss."
        )
    if ctx.bias_is_initial is False:
        lines.append(
            "The bias no longer holds the values its initializer made: the model "
            "was trained or weights were loaded. Check a freshly built model."
        )
    return lines


def _kernel_lines(n: dict) -> List[str]:
    if n["ok"]:
        return []
    if n["kernel_part"] > n["tol"]:
        return [
            f"- The final kernel's random part adds {n['kernel_part']:.4g}: its "
            "outputs at init are not ~0 and pull the predictions away from the "
            "bias. Scale it down: `kernel_initializer=\"zeros\"` or a smaller "
            "stddev (e.g. `keras.initializers.RandomNormal(stddev=1e-3)`) in the "
            "output layer."
        ]
    if n["kernel_part"] < -n["tol"]:
        return [
            f"- The kernel lowers the loss by {-n['kernel_part']:.4g}: the model "
            "already predicts from its inputs. Was it trained? This check is meant "
            "for a model before training."
        ]
    return []


def _regularization_lines(n: dict) -> List[str]:
    reg = n["regularization"]
    if n["ok"] or abs(reg) <= n["tol"]:
        return []
    return [
        f"- The model's regularization losses (kernel, bias or activity "
        f"regularizers) add {reg:.4g} to what `evaluate` reports, while "
        "`expected` is the data loss alone: compare with `expected + "
        f"{reg:.4g}`, or check the model without regularizers. This part is "
        "not the bias's."
    ]


def _mismatch_lines(ctx: _Context) -> List[str]:
    if not ctx.mismatch:
        return []
    lines = [
        f"- The bias was made for another loss, {ctx.made_for} "
        f"({ctx.initializer}), than the model is compiled with, {ctx.spec}: "
        "their best constants differ (`expected` is the compiled loss's, from "
        "this data). Recomputing the same initializer cannot help: call "
        f"{FIX} to set the bias for the compiled loss."
    ]
    if ctx.made_for.startswith("huber(") and ctx.spec.startswith("huber"):
        lines.append(
            "  Keras 3.15's `Huber.get_config()` drops `delta`: a model reloaded "
            "with `keras.models.load_model` is compiled with Huber(delta=1.0). If "
            "that is what happened, recompile with "
            f"`keras.losses.Huber({ctx.made_for[len('huber('):-1]})`."
        )
    return lines


def _origin_lines(ctx: _Context) -> List[str]:
    if ctx.how != "table" or ctx.mismatch:
        return []
    return [
        f"- The bias_initializer of layer '{ctx.layer_name}' ({ctx.initializer}) "
        "does not know its expected loss (e.g. a KerasHub task rebuilt from its "
        "config): `expected` is the best constant's loss for the compiled loss, "
        f"{ctx.spec}, computed from this data with the loss table."
    ]


def _bias_lines(n: dict, ctx: _Context) -> List[str]:
    if n["ok"] or ctx.mismatch:
        return []
    if n["bias_part"] > n["tol"]:
        return [
            f"- The bias itself is off by {n['bias_part']:.4g}. Was the bias "
            "recomputed for this data (the same split, target and sample weights) "
            f"and for this loss? The model is compiled with loss={ctx.loss} and "
            f"the bias initializer is {ctx.initializer}; call {FIX}, or use "
            f"{_HINT}."
        ]
    if n["bias_part"] < -n["tol"]:
        return [
            f"- The bias alone does {-n['bias_part']:.4g} better than `expected`, "
            "which no constant can do if `expected` is the best constant's loss "
            "on this data: the expected loss belongs to other data or another "
            f"loss (the model is compiled with loss={ctx.loss}). Recompute the "
            "initializer on this dataset, or pass the right `expected=`."
        ]
    return []


def diagnose(n: dict, ctx: _Context) -> InitLossCheck:
    """Writes the message for the numbers of `_numbers`."""
    lines = (_summary(n, ctx) + _kernel_lines(n) + _regularization_lines(n)
             + _mismatch_lines(ctx) + _origin_lines(ctx) + _bias_lines(n, ctx))
    fields = {k: v for k, v in n.items() if k != "tol"}
    return InitLossCheck(message="\n".join(lines), loss=ctx.spec,
                         made_for=ctx.made_for, output=ctx.output, **fields)


def diagnose_outputs(n: dict, parts: Dict[str, InitLossCheck],
                     layers: List[str]) -> InitLossCheck:
    """The total of several outputs (`n`) and each output's own check."""
    off = [name for name, part in parts.items() if not part.ok]
    relative = f", {n['gap'] / n['expected']:+.1%}" if n["expected"] else ""
    lines = [
        f"Total loss at init: {n['measured']:.6g} (sum of loss_weight x loss over "
        f"{len(layers)} outputs, regularization {n['regularization']:.4g}), "
        f"expected {n['expected']:.6g} (gap {n['gap']:+.4g}{relative}; "
        f"rtol={n['rtol']:g}). With the kernels of layers {layers} set to zero "
        f"the loss is {n['zero_kernel_loss']:.6g}."
    ]
    if off:
        lines.append(f"NOT OK: output(s) {off} are off (details below).")
    elif parts:
        lines.append("OK: every output starts at its best constant.")
    for name, part in parts.items():
        lines.append(f"Output '{name}':")
        lines += ["  " + line for line in part.message.splitlines()]
    ok = n["ok"] and not off
    fields = {k: v for k, v in n.items() if k not in ("tol", "ok")}
    return InitLossCheck(message="\n".join(lines), ok=ok, outputs=parts or None,
                         **fields)

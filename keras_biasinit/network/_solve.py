"""The gains, from measured second moments (pure arithmetic, no Keras)."""

from __future__ import annotations

import math
from typing import Optional

# One step of the iteration changes a gain by at most this factor.
MAX_STEP = 16.0


def homogeneous_gain(moment: float, target: float) -> float:
    """`g = sqrt(target / m)`: exact when `out(g W) = g out(W)`, since then
    `E[out(g W)^2] = g^2 m`."""
    return math.sqrt(target / moment)


def next_factor(moment: float, target: float, power: float) -> float:
    """The next multiplicative step of a gain when `E[out^2]` grows like
    `g^power` near the current gain (a Newton step in log-log), bounded to
    `[1 / MAX_STEP, MAX_STEP]`."""
    factor = (target / moment) ** (1.0 / power)
    return min(max(factor, 1.0 / MAX_STEP), MAX_STEP)


def local_power(before: float, after: float, factor: float,
                fallback: float) -> float:
    """`d log m / d log g` from two measurements, or `fallback` where the two
    cannot tell it (no change, or a response too flat to steer by)."""
    if factor == 1.0 or before <= 0 or after <= 0:
        return fallback
    power = math.log(after / before) / math.log(factor)
    return power if power >= 0.25 else fallback


def sum_gain(shortcut: float, branch: float, cross: float,
             target: float) -> Optional[float]:
    """The branch gain `g > 0` that puts a sum at the target.

    With `s` the inputs that stay as they are and `b` the branches that scale
    with `g`: `E[(s + g b)^2] = m_s + 2 g c + g^2 m_b`, where `m_s = E[s^2]`,
    `m_b = E[b^2]` and `c = E[s b]`. Setting it to `target`:

        g = (-c + sqrt(c^2 - m_b (m_s - target))) / m_b

    None when no positive `g` reaches the target (the other inputs alone
    already exceed it).

    Example:

    >>> sum_gain(shortcut=0.0, branch=4.0, cross=0.0, target=1.0)
    0.5
    >>> sum_gain(shortcut=1.0, branch=1.0, cross=0.0, target=1.5)  # 1 + g^2 = 1.5
    0.7071067811865476
    >>> sum_gain(shortcut=2.0, branch=1.0, cross=0.0, target=1.0) is None
    True
    """
    discriminant = cross * cross - branch * (shortcut - target)
    if discriminant < 0:
        return None
    gain = (-cross + math.sqrt(discriminant)) / branch
    return gain if gain > 0 and math.isfinite(gain) else None

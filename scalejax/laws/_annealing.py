"""Learning-rate annealing (Tissue et al. 2024): loss along training as a function of the schedule's areas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ScalejaxError
from .._law import Law, Param


def annealing_areas(lr, decay: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """The forward area S1 and annealing area S2 of a learning-rate schedule, at every step.

    `S1(s) = sum_{i<=s} eta_i` and `S2(s) = sum_{i<=s} m_i` with the momentum
    `m_i = decay m_{i-1} + (eta_{i-1} - eta_i)`, computed by one `lax.scan`.

    Args:
        lr: the learning rate at steps 1, 2, ..., s (any schedule: warmup, cosine, WSD...).
        decay: the momentum factor lambda of the annealing area (0.999 in the paper).

    Returns:
        `(S1, S2)`, float64 arrays of the same length as `lr`.

    Example:
        >>> import numpy as np, scalejax as sj
        >>> s1, s2 = sj.laws.annealing_areas(np.linspace(1e-3, 1e-4, 100))
        >>> s1.shape, bool(s2[-1] > 0)
        ((100,), True)

    References:
        Tissue et al. 2024, 'Scaling Law with Learning Rate Annealing', eqs. (1)-(3).
    """
    lr = np.asarray(lr, dtype=np.float64).ravel()
    if lr.size == 0 or not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise ScalejaxError("lr must be a non-empty sequence of finite, non-negative learning rates")
    if not 0 <= decay < 1:
        raise ScalejaxError(f"decay must lie in [0, 1), got {decay}")

    def step(carry, eta):
        s1, s2, m, prev = carry
        m = decay * m + (prev - eta)
        s1, s2 = s1 + eta, s2 + m
        return (s1, s2, m, eta), (s1, s2)

    with jax.enable_x64(True):
        lr_j = jnp.asarray(lr)
        zero = jnp.zeros((), lr_j.dtype)
        _, (s1, s2) = jax.lax.scan(step, (zero, zero, zero, lr_j[0]), lr_j)
        return np.asarray(s1), np.asarray(s2)


lr_annealing = Law(
    name="lr_annealing",
    fn=lambda p, x: p["L0"] + p["A"] * x["S1"] ** -p["alpha"] - p["C"] * x["S2"],
    params=(
        Param("L0", lower=0, grid=(1.0, 2.0, 3.0), doc="loss at infinite forward area"),
        Param("A", lower=0, grid=(0.3, 1.0, 3.0), doc="power-law coefficient"),
        Param("alpha", lower=0, grid=(0.2, 0.5, 1.0), doc="power-law exponent in the forward area"),
        Param("C", grid=(0.0, 1.0, 10.0), doc="gain per unit of annealing area"),
    ),
    inputs=("S1", "S2"),
    positive_inputs=("S1",),
    equation="L(s) = L0 + A S1^-alpha - C S2",
    reference="Tissue et al. 2024, 'Scaling Law with Learning Rate Annealing', eq. (1)",
)
"""Tissue et al.'s loss curve along training: `L(s) = L0 + A S1^-alpha - C S2`.

S1 and S2 are the forward and annealing areas of the learning-rate schedule
up to step s (`annealing_areas`). Fitted on one schedule's curve, the law
predicts the curve of any other schedule of the same model and data.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("lr_annealing").inputs
    ('S1', 'S2')

References:
    Tissue et al. 2024, Scaling Law with Learning Rate Annealing, eq. (1).
"""

"""Kaplan et al.'s laws in training steps: L(N, S) and the critical batch size B_crit(L)."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param, log_sum_exp

kaplan_steps = Law(
    name="kaplan_steps",
    fn=lambda p, x: (p["Nc"] / x["N"]) ** p["alpha_N"] + (p["Sc"] / x["S"]) ** p["alpha_S"],
    log_fn=lambda p, x: log_sum_exp(
        p["alpha_N"] * (jnp.log(p["Nc"]) - jnp.log(x["N"])), p["alpha_S"] * (jnp.log(p["Sc"]) - jnp.log(x["S"]))
    ),
    params=(
        Param("Nc", lower=0, grid=(1e11, 1e13, 1e15), doc="critical model size"),
        Param("Sc", lower=0, grid=(1e2, 1e3, 1e4), doc="critical number of steps"),
        Param("alpha_N", lower=0, grid=(0.03, 0.1, 0.3), doc="model-size exponent"),
        Param("alpha_S", lower=0, grid=(0.3, 0.8), doc="steps exponent"),
    ),
    inputs=("N", "S"),
    equation="L(N, S) = (Nc / N)^alpha_N + (Sc / S_min)^alpha_S",
    reference="Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', eq. (1.6)",
)
"""Kaplan et al.'s loss after S_min steps at a batch far above critical: `(Nc/N)^alpha_N + (Sc/S)^alpha_S`.

Pass S as S_min = S / (1 + B_crit(L) / B), the steps the run would take at a
large batch (`critical_batch` gives B_crit). The paper's values: alpha_N = 0.076,
alpha_S = 0.76, Nc = 6.5e13, Sc = 2.1e3.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("kaplan_steps").inputs
    ('N', 'S')

References:
    Kaplan et al. 2020, Scaling Laws for Neural Language Models, eq. (1.6).
"""


critical_batch = Law(
    name="critical_batch",
    fn=lambda p, x: p["B_star"] * x["L"] ** (-1.0 / p["alpha_B"]),
    log_fn=lambda p, x: jnp.log(p["B_star"]) - jnp.log(x["L"]) / p["alpha_B"],
    params=(
        Param("B_star", lower=0, grid=(1e6, 1e8, 1e10), doc="critical batch (tokens) at loss 1"),
        Param("alpha_B", lower=0, grid=(0.1, 0.2, 0.5), doc="exponent (B_crit doubles when L falls by 2^-alpha_B)"),
    ),
    inputs=("L",),
    equation="B_crit(L) = B* / L^(1 / alpha_B)",
    reference="Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', eq. (1.4)",
)
"""Kaplan et al.'s critical batch size as a power of the loss (B* = 2e8 tokens, alpha_B = 0.21).

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("critical_batch").param_names
    ('B_star', 'alpha_B')

References:
    Kaplan et al. 2020, Scaling Laws for Neural Language Models, eq. (1.4).
"""

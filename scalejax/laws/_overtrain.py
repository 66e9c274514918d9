"""Over-training (Gadre et al. 2024) and data-constrained (Muennighoff et al. 2023) laws in N and D."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param, log_sum_exp


def _overtrain_log(p, x):
    log_c = jnp.log(6.0) + jnp.log(x["N"]) + jnp.log(x["D"])
    log_m = jnp.log(x["D"]) - jnp.log(x["N"])
    eta = p["eta"]
    return log_sum_exp(
        jnp.log(p["E"]),
        jnp.log(p["a"]) + eta * log_m - eta * log_c,
        jnp.log(p["b"]) - eta * log_m - eta * log_c,
    )


def _overtrain(p, x):
    c, m = 6.0 * x["N"] * x["D"], x["D"] / x["N"]
    return p["E"] + (p["a"] * m ** p["eta"] + p["b"] * m ** -p["eta"]) * c ** -p["eta"]


overtrain = Law(
    name="overtrain",
    fn=_overtrain,
    log_fn=_overtrain_log,
    params=(
        Param("E", lower=0, grid=(0.5, 1.5, 3.0), doc="irreducible loss"),
        Param("a", lower=0, grid=(1.0, 30.0, 1e3, 3e4), doc="coefficient of the over-training term M^eta"),
        Param("b", lower=0, grid=(1.0, 30.0, 1e3, 3e4), doc="coefficient of the under-training term M^-eta"),
        Param("eta", lower=0, grid=(0.05, 0.1, 0.2, 0.3), doc="compute exponent (half Chinchilla's alpha = beta)"),
    ),
    inputs=("N", "D"),
    equation="L(C, M) = E + (a M^eta + b M^-eta) C^-eta, with C = 6 N D and M = D / N",
    reference=(
        "Gadre et al. 2024, 'Language models scale reliably with over-training and on downstream tasks', eq. (4)"
    ),
)
"""Gadre et al.'s over-training law: loss as a function of compute C = 6ND and token multiplier M = D/N.

It is Chinchilla's law with equal exponents (alpha = beta = 2 eta) rewritten in
(C, M), so that a fixed M gives a straight power law in C.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("overtrain").inputs
    ('N', 'D')

References:
    Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks, eq. (4).
"""


def _effective_data(p, x):
    """log D' = log(U + U R* (1 - exp(-R_D / R*))), with R_D = D / U - 1 repetitions beyond the first epoch."""
    repeats = jnp.maximum(x["D"] / x["U"] - 1.0, 0.0)
    r_star = p["R_star"]
    return jnp.log(x["U"]) + jnp.log1p(r_star * -jnp.expm1(-repeats / r_star))


def _data_constrained_log(p, x):
    return log_sum_exp(
        jnp.log(p["E"]),
        jnp.log(p["A"]) - p["alpha"] * jnp.log(x["N"]),
        jnp.log(p["B"]) - p["beta"] * _effective_data(p, x),
    )


data_constrained = Law(
    name="data_constrained",
    fn=lambda p, x: jnp.exp(_data_constrained_log(p, x)),
    log_fn=_data_constrained_log,
    params=(
        Param("E", lower=0, grid=(1.0, 2.0), doc="irreducible loss"),
        Param("A", lower=0, grid=(1e2, 1e3, 1e4), doc="model-size coefficient"),
        Param("B", lower=0, grid=(1e2, 1e3, 1e4), doc="data coefficient"),
        Param("alpha", lower=0, grid=(0.2, 0.4), doc="model-size exponent"),
        Param("beta", lower=0, grid=(0.2, 0.4), doc="data exponent"),
        Param(
            "R_star",
            lower=0,
            grid=(5.0, 20.0),
            doc="repetitions after which repeated data is worth 1 - 1/e of its decay",
        ),
    ),
    inputs=("N", "D", "U"),
    equation="L = E + A / N^alpha + B / D'^beta, D' = U + U R* (1 - exp(-(D/U - 1) / R*))",
    reference="Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', eqs. (5)-(6)",
)
"""Muennighoff et al.'s data-constrained law: repeated tokens are worth exponentially less.

Inputs: N (parameters), D (tokens seen, repetitions included) and U (unique
tokens). D' is the effective data: the first epoch counts fully and the
R_D = D/U - 1 repeated epochs decay with constant R*. The paper also discounts
excess parameters (N' with R_N*); this law keeps N as is (no N' term).

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("data_constrained").inputs
    ('N', 'D', 'U')

References:
    Muennighoff et al. 2023, Scaling Data-Constrained Language Models, eqs. (5)-(6).
"""

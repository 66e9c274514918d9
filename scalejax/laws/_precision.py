"""Precision-aware laws (Kumar et al. 2024): low-precision training and post-training quantization."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param, log_sum_exp


def _precision_log(p, x):
    # N_eff = N (1 - exp(-P / gamma)): fewer bits of weights act as fewer parameters.
    log_n_eff = jnp.log(x["N"]) + jnp.log(-jnp.expm1(-x["P"] / p["gamma"]))
    return log_sum_exp(
        jnp.log(p["E"]),
        jnp.log(p["A"]) - p["alpha"] * log_n_eff,
        jnp.log(p["B"]) - p["beta"] * jnp.log(x["D"]),
    )


precision = Law(
    name="precision",
    fn=lambda p, x: jnp.exp(_precision_log(p, x)),
    log_fn=_precision_log,
    params=(
        Param("E", lower=0, grid=(1.0, 2.0), doc="irreducible loss"),
        Param("A", lower=0, grid=(1e2, 1e4), doc="model-size coefficient"),
        Param("B", lower=0, grid=(1e2, 1e4), doc="data coefficient"),
        Param("alpha", lower=0, grid=(0.2, 0.4), doc="model-size exponent"),
        Param("beta", lower=0, grid=(0.2, 0.4), doc="data exponent"),
        Param("gamma", lower=0, grid=(1.0, 3.0), doc="bits at which the weights keep 1 - 1/e of their parameters"),
    ),
    inputs=("N", "D", "P"),
    equation="L = A N_eff^-alpha + B D^-beta + E, N_eff = N (1 - exp(-P / gamma))",
    reference="Kumar et al. 2024, 'Scaling Laws for Precision', eq. (3) (weight precision P)",
)
"""Kumar et al.'s law for training in low precision: P bits of weights make N parameters act as N_eff.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("precision").inputs
    ('N', 'D', 'P')

References:
    Kumar et al. 2024, Scaling Laws for Precision, eq. (3).
"""


ptq_degradation = Law(
    name="ptq_degradation",
    fn=lambda p, x: p["C_T"] * jnp.exp(-x["P"] / p["gamma_post"]) * x["D"] ** p["gamma_D"] / x["N"] ** p["gamma_N"],
    log_fn=lambda p, x: (
        jnp.log(p["C_T"]) - x["P"] / p["gamma_post"] + p["gamma_D"] * jnp.log(x["D"]) - p["gamma_N"] * jnp.log(x["N"])
    ),
    params=(
        Param("C_T", lower=0, grid=(1e-2, 1.0, 1e2), doc="scale"),
        Param("gamma_post", lower=0, grid=(0.5, 1.0, 3.0), doc="bits over which degradation falls by e"),
        Param("gamma_D", grid=(0.0, 0.5), doc="data exponent (more data: more fragile)"),
        Param("gamma_N", grid=(0.0, 0.5), doc="model-size exponent"),
    ),
    inputs=("N", "D", "P"),
    positive_inputs=("N", "D"),  # exp(-P / gamma_post) is defined at P = 0
    equation="delta_PTQ(N, D, P) = C_T exp(-P / gamma_post) D^gamma_D / N^gamma_N",
    reference="Kumar et al. 2024, 'Scaling Laws for Precision', eq. (2)",
)
"""Kumar et al.'s loss increase from post-training quantization to P bits of a model trained on D tokens.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("ptq_degradation").param_names
    ('C_T', 'gamma_post', 'gamma_D', 'gamma_N')

References:
    Kumar et al. 2024, Scaling Laws for Precision, eq. (2).
"""

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


def _effective_params(p, x):
    """log N' = log(U_N + U_N R_N* (1 - exp(-R_N / R_N*))) with U_N the compute-optimal size for U unique tokens.

    U_N = min(N, D_opt^-1(U)): Chinchilla's optimal allocation, with this law's own
    A, B, alpha, beta, gives N_opt = G (U G)^(beta / alpha), G = (alpha A / (beta B))^(1 / (alpha + beta));
    parameters beyond U_N are "excess" and decay like repeated tokens, R_N = N / U_N - 1.
    """
    alpha, beta = p["alpha"], p["beta"]
    log_g = (jnp.log(alpha) + jnp.log(p["A"]) - jnp.log(beta) - jnp.log(p["B"])) / (alpha + beta)
    log_un = jnp.minimum(jnp.log(x["N"]), log_g + (beta / alpha) * (jnp.log(x["U"]) + log_g))
    excess = jnp.maximum(jnp.exp(jnp.log(x["N"]) - log_un) - 1.0, 0.0)
    r_star = p["R_N_star"]
    return log_un + jnp.log1p(r_star * -jnp.expm1(-excess / r_star))


_R_STAR = Param(
    "R_star", lower=0, grid=(5.0, 20.0), doc="repetitions after which repeated data is worth 1 - 1/e of its decay"
)
_R_N_STAR = Param(
    "R_N_star",
    lower=0,
    grid=(2.0, 10.0),
    doc="excess-parameter ratio at which excess parameters are worth 1 - 1/e of their decay",
)


def data_constrained_law(excess_params: bool = False) -> Law:
    """Muennighoff et al.'s data-constrained law, optionally with its discount of excess parameters.

    `L = E + A / N'^alpha + B / D'^beta`. Repeated tokens decay:
    `D' = U + U R* (1 - exp(-R_D / R*))` with `R_D = D / U - 1` (eq. 5). With
    `excess_params=True` (the paper's full form) parameters beyond `U_N`, the
    compute-optimal size for the `U` unique tokens, decay the same way:
    `N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*))` with `R_N = N / U_N - 1` and
    `U_N = min(N, G (U G)^(beta/alpha))`, `G = (alpha A / (beta B))^(1/(alpha+beta))`
    (eq. 6); without it `N' = N`.

    Args:
        excess_params: discount parameters beyond the compute-optimal size (adds `R_N_star`).

    Returns:
        A `Law` with inputs `N, D, U` (parameters, tokens seen, unique tokens).

    Example:
        >>> import scalejax as sj
        >>> sj.laws.data_constrained_law(excess_params=True).param_names
        ('E', 'A', 'B', 'alpha', 'beta', 'R_star', 'R_N_star')

    References:
        Muennighoff et al. 2023, Scaling Data-Constrained Language Models (NeurIPS 2023), eqs. (5)-(6) and
        the full law of Section 3.2. Checked against the authors' formula in huggingface/datablations
        (README, "Parametric Fit": `U_N = min(N, D_to_N(U))`, `D_to_N(D) = (D G)^(beta/alpha) G`); the
        equation numbers are from memory of the paper. The published fit (A = e^6.255, B = e^7.305,
        E = e^0.6255, alpha = beta = 0.3527, R* = 15.39, R_N* = 5.31) gives 2.22564 for
        (N, D, U) = (6.34e9, 242e9, 25e9), as the README prints.
    """

    def log_fn(p, x):
        log_n = _effective_params(p, x) if excess_params else jnp.log(x["N"])
        return log_sum_exp(
            jnp.log(p["E"]),
            jnp.log(p["A"]) - p["alpha"] * log_n,
            jnp.log(p["B"]) - p["beta"] * _effective_data(p, x),
        )

    params = (
        Param("E", lower=0, grid=(1.0, 2.0), doc="irreducible loss"),
        Param("A", lower=0, grid=(1e2, 1e3, 1e4), doc="model-size coefficient"),
        Param("B", lower=0, grid=(1e2, 1e3, 1e4), doc="data coefficient"),
        Param("alpha", lower=0, grid=(0.2, 0.4), doc="model-size exponent"),
        Param("beta", lower=0, grid=(0.2, 0.4), doc="data exponent"),
        _R_STAR,
    ) + ((_R_N_STAR,) if excess_params else ())
    n_prime = (
        "N' = U_N + U_N R_N* (1 - exp(-(N/U_N - 1) / R_N*)), U_N = min(N, G (U G)^(beta/alpha))"
        if excess_params
        else "N' = N"
    )
    return Law(
        name="data_constrained_full" if excess_params else "data_constrained",
        fn=lambda p, x: jnp.exp(log_fn(p, x)),
        log_fn=log_fn,
        params=params,
        inputs=("N", "D", "U"),
        equation=f"L = E + A / N'^alpha + B / D'^beta, D' = U + U R* (1 - exp(-(D/U - 1) / R*)), {n_prime}",
        reference="Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', eqs. (5)-(6)",
    )


data_constrained = data_constrained_law()
"""Muennighoff et al.'s data-constrained law: repeated tokens are worth exponentially less.

Inputs: N (parameters), D (tokens seen, repetitions included) and U (unique
tokens). D' is the effective data: the first epoch counts fully and the
R_D = D/U - 1 repeated epochs decay with constant R*. The paper also discounts
excess parameters: that full form is `data_constrained_full`
(`data_constrained_law(excess_params=True)`); this one keeps N as is.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("data_constrained").inputs
    ('N', 'D', 'U')

References:
    Muennighoff et al. 2023, Scaling Data-Constrained Language Models, eqs. (5)-(6).
"""


data_constrained_full = data_constrained_law(excess_params=True)
"""Muennighoff et al.'s full data-constrained law: repeated tokens and excess parameters both decay.

See `data_constrained_law` for the equation.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("data_constrained_full").param_names[-1]
    'R_N_star'

References:
    Muennighoff et al. 2023, Scaling Data-Constrained Language Models, eqs. (5)-(6).
"""

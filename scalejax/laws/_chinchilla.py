"""Two-variable laws in model size N and training tokens D."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._law import Law, Param, log_sum_exp


def _chinchilla_log(p, x):
    return log_sum_exp(
        jnp.log(p["E"]),
        jnp.log(p["A"]) - p["alpha"] * jnp.log(x["N"]),
        jnp.log(p["B"]) - p["beta"] * jnp.log(x["D"]),
    )


def _chinchilla(p, x):
    return p["E"] + p["A"] * x["N"] ** -p["alpha"] + p["B"] * x["D"] ** -p["beta"]


chinchilla = Law(
    name="chinchilla",
    fn=_chinchilla,
    log_fn=_chinchilla_log,
    params=(
        Param(
            "E",
            lower=0,
            grid=tuple(np.exp(np.arange(-1.0, 1.01, 0.5))),
            doc="irreducible loss",
            prior=("LogNormal", np.log(2.0), 1.0),
        ),
        Param(
            "A",
            lower=0,
            grid=tuple(np.exp(np.arange(0.0, 25.1, 5.0))),
            doc="model-size coefficient",
            prior=("LogNormal", 7.0, 5.0),
        ),
        Param(
            "B",
            lower=0,
            grid=tuple(np.exp(np.arange(0.0, 25.1, 5.0))),
            doc="data coefficient",
            prior=("LogNormal", 7.0, 5.0),
        ),
        Param("alpha", grid=tuple(np.arange(0.0, 2.01, 0.5)), doc="model-size exponent", prior=("Normal", 0.4, 0.5)),
        Param("beta", grid=tuple(np.arange(0.0, 2.01, 0.5)), doc="data exponent", prior=("Normal", 0.4, 0.5)),
    ),
    inputs=("N", "D"),
    equation="L(N, D) = E + A / N^alpha + B / D^beta",
    reference=(
        "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', eq. (2) and "
        "Appendix D.2 (start grid: log E in {-1,...,1}, log A, log B in {0,5,...,25}, alpha, beta in {0,...,2})"
    ),
)
"""Chinchilla's parametric loss `L(N, D) = E + A/N^alpha + B/D^beta`.

Fitted on the log scale as `logsumexp(log E, log A - alpha log N, log B - beta log D)`.
The default starts are Hoffmann et al.'s 4,500-point grid. alpha and beta are
unbounded, as in the paper's fitting procedure.

Priors (for `scalejax.posterior`), weakly informative on the scale of
language-model losses in nats: E ~ LogNormal(log 2, 1); A, B ~ LogNormal(7, 5)
(log A, log B ~ Normal(7, 5), covering Hoffmann et al.'s whole start grid
0-25 within 3.6 sd); alpha, beta ~ Normal(0.4, 0.5) (published exponents lie
in 0.05-0.8).

References:
    Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, eq. (2).
    Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt.
"""


def _kaplan_log(p, x):
    ratio = p["alpha_N"] / p["alpha_D"]
    return p["alpha_D"] * log_sum_exp(
        ratio * (jnp.log(p["Nc"]) - jnp.log(x["N"])),
        jnp.log(p["Dc"]) - jnp.log(x["D"]),
    )


def _kaplan(p, x):
    return ((p["Nc"] / x["N"]) ** (p["alpha_N"] / p["alpha_D"]) + p["Dc"] / x["D"]) ** p["alpha_D"]


kaplan = Law(
    name="kaplan",
    fn=_kaplan,
    log_fn=_kaplan_log,
    params=(
        Param(
            "Nc", lower=0, grid=(1e11, 1e13, 1e15), doc="critical model size", prior=("LogNormal", np.log(1e13), 5.0)
        ),
        Param("Dc", lower=0, grid=(1e10, 1e12, 1e14), doc="critical data size", prior=("LogNormal", np.log(1e12), 5.0)),
        Param(
            "alpha_N", lower=0, grid=(0.03, 0.1, 0.3), doc="model-size exponent", prior=("LogNormal", np.log(0.1), 1.0)
        ),
        Param("alpha_D", lower=0, grid=(0.03, 0.1, 0.3), doc="data exponent", prior=("LogNormal", np.log(0.1), 1.0)),
    ),
    inputs=("N", "D"),
    equation="L(N, D) = [(Nc / N)^(alpha_N / alpha_D) + Dc / D]^alpha_D",
    reference="Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', eq. (1.5)",
)
"""Kaplan et al.'s joint law `L(N, D) = [(Nc/N)^(alpha_N/alpha_D) + Dc/D]^alpha_D`.

The paper's fit: alpha_N = 0.076, alpha_D = 0.103, Nc = 6.4e13, Dc = 1.8e13
(N without embeddings, D in tokens).

Priors (for `scalejax.posterior`): Nc ~ LogNormal(log 1e13, 5),
Dc ~ LogNormal(log 1e12, 5), alpha_N, alpha_D ~ LogNormal(log 0.1, 1).

References:
    Kaplan et al. 2020, Scaling Laws for Neural Language Models, eq. (1.5).
"""

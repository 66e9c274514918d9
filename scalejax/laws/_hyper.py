"""Hyperparameter laws: the optimal learning rate and batch size as power laws in N and D."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param


def _log_power_nd(p, x):
    return jnp.log(p["c"]) + p["a"] * jnp.log(x["N"]) + p["b"] * jnp.log(x["D"])


def _power_nd(p, x):
    return p["c"] * x["N"] ** p["a"] * x["D"] ** p["b"]


optimal_lr = Law(
    name="optimal_lr",
    fn=_power_nd,
    log_fn=_log_power_nd,
    params=(
        Param("c", lower=0, grid=(1e-2, 1.0, 1e2), doc="coefficient"),
        Param("a", grid=(-1.0, -0.5, 0.0), doc="model-size exponent"),
        Param("b", grid=(0.0, 0.3, 0.6), doc="data exponent"),
    ),
    inputs=("N", "D"),
    equation="eta*(N, D) = c N^a D^b",
    reference="Li et al. 2025, 'Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law' (Step Law), eq. (1)",
)
"""The optimal peak learning rate as a power law in N and D (Step Law: eta* = 1.79 N^-0.713 D^0.307).

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("optimal_lr").param_names
    ('c', 'a', 'b')

References:
    Li et al. 2025, Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law in LLM Pretraining, eq. (1).
    DeepSeek-AI 2024, DeepSeek LLM, eq. (1) (the same form in compute).
"""


optimal_batch = Law(
    name="optimal_batch",
    fn=_power_nd,
    log_fn=_log_power_nd,
    params=(
        Param("c", lower=0, grid=(1e-2, 1.0, 1e2), doc="coefficient"),
        Param("a", grid=(-0.3, 0.0, 0.3), doc="model-size exponent"),
        Param("b", grid=(0.2, 0.5, 0.8), doc="data exponent"),
    ),
    inputs=("N", "D"),
    equation="B*(N, D) = c N^a D^b",
    reference="Li et al. 2025, 'Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law' (Step Law), eq. (2)",
)
"""The optimal batch size (tokens) as a power law in N and D (Step Law: B* = 0.58 D^0.571, a = 0).

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("optimal_batch").inputs
    ('N', 'D')

References:
    Li et al. 2025, Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law in LLM Pretraining, eq. (2).
"""

"""Compute-optimal allocation of a FLOP budget between parameters and tokens."""

from __future__ import annotations

import jax.numpy as jnp


def chinchilla_compute_optimal(params, compute, flops_per_param_token: float = 6.0) -> dict:
    """Closed-form compute-optimal split of the Chinchilla law under `C = k N D`.

    Minimising `E + A/N^alpha + B/D^beta` subject to `C = k N D` gives
    `N* = G (C/k)^(beta/(alpha+beta))`, `D* = (C/k) / N*`, with
    `G = (alpha A / (beta B))^(1/(alpha+beta))`. Written for one parameter set;
    use `draws.map` or `Bootstrap.derived_interval` for intervals.

    Args:
        params: dict with E, A, B, alpha, beta.
        compute: FLOP budget C (scalar or array).
        flops_per_param_token: k in C = k N D (6 for dense transformers).

    Returns:
        dict with `N`, `D`, `tokens_per_param` and `loss` at the optimum.

    References:
        Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, eq. (4).
    """
    alpha, beta = params["alpha"], params["beta"]
    budget = jnp.asarray(compute) / flops_per_param_token
    log_g = (jnp.log(alpha * params["A"]) - jnp.log(beta * params["B"])) / (alpha + beta)
    log_n = log_g + beta / (alpha + beta) * jnp.log(budget)
    log_d = jnp.log(budget) - log_n
    n, d = jnp.exp(log_n), jnp.exp(log_d)
    loss = params["E"] + params["A"] * jnp.exp(-alpha * log_n) + params["B"] * jnp.exp(-beta * log_d)
    return {"N": n, "D": d, "tokens_per_param": d / n, "loss": loss}

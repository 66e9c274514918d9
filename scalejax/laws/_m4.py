"""The M4 estimator of Alabdulmohsin et al. (2022): a learning curve defined implicitly between two plateaus."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._law import Law, Param

_BISECTION_STEPS = 64


def _m4_fraction(p, x):
    """t in (0, 1) with eps = eps_inf + delta0 t solving t = k (1 - t)^alpha, k = beta x^-c delta0^(alpha - 1).

    Bisection (with no gradient) finds the root; one Newton step on top carries
    the implicit-function gradient dt/dtheta = -h_theta / h_t.
    """
    alpha = p["alpha"]
    log_k = jnp.log(p["beta"]) - p["c"] * jnp.log(x["x"]) + (alpha - 1.0) * jnp.log(p["delta0"])
    k = jnp.exp(log_k)

    def h(t, k, alpha):
        return t - k * (1.0 - t) ** alpha

    k_sg, alpha_sg = jax.lax.stop_gradient(k), jax.lax.stop_gradient(alpha)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = h(mid, k_sg, alpha_sg) > 0
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    lo, hi = jax.lax.fori_loop(0, _BISECTION_STEPS, bisect, (jnp.zeros_like(k_sg), jnp.ones_like(k_sg)))
    t0 = jax.lax.stop_gradient(0.5 * (lo + hi))
    slope = jax.lax.stop_gradient(1.0 + k_sg * alpha_sg * (1.0 - t0) ** (alpha_sg - 1.0))
    return t0 - h(t0, k, alpha) / slope


m4 = Law(
    name="m4",
    fn=lambda p, x: p["eps_inf"] + p["delta0"] * _m4_fraction(p, x),
    log_fn=lambda p, x: jnp.log(p["eps_inf"] + p["delta0"] * _m4_fraction(p, x)),
    params=(
        Param("eps_inf", lower=0, grid=(1e-3, 0.1), doc="error at infinite scale"),
        Param("delta0", lower=0, grid=(0.5, 2.0), doc="eps_0 - eps_inf: the gap to the error at scale 0"),
        Param("beta", lower=0, grid=(1.0, 1e2, 1e4), doc="scale of the power law"),
        Param("c", lower=0, grid=(0.1, 0.3, 0.6), doc="power-law exponent (as x^-c)"),
        Param("alpha", lower=0, grid=(0.5, 1.0), doc="exponent of the approach to eps_0"),
    ),
    inputs=("x",),
    equation="(eps - eps_inf) / (eps_0 - eps)^alpha = beta x^-c, eps_0 = eps_inf + delta0",
    reference="Alabdulmohsin et al. 2022, 'Revisiting Neural Scaling Laws in Language and Vision', eq. (4) (M4)",
)
"""The M4 estimator: error between eps_0 (at scale 0) and eps_inf, a power law in x in between.

Defined implicitly; each prediction solves for eps by bisection, with exact
first derivatives from the implicit-function theorem.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("m4").param_names
    ('eps_inf', 'delta0', 'beta', 'c', 'alpha')

References:
    Alabdulmohsin et al. 2022, Revisiting Neural Scaling Laws in Language and Vision, eq. (4).
"""

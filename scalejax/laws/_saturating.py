"""Saturating and exponential laws in one input: Henighan's power law with an offset, the densing law."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param, log_sum_exp

henighan = Law(
    name="henighan",
    fn=lambda p, x: p["L_inf"] + (p["x0"] / x["x"]) ** p["alpha"],
    log_fn=lambda p, x: log_sum_exp(jnp.log(p["L_inf"]), p["alpha"] * (jnp.log(p["x0"]) - jnp.log(x["x"]))),
    params=(
        Param("L_inf", lower=0, grid=(0.1, 1.0, 3.0), doc="irreducible loss"),
        Param("x0", lower=0, grid=(1e2, 1e5, 1e8, 1e11), doc="scale at which the reducible loss is 1"),
        Param("alpha", lower=0, grid=(0.05, 0.2, 0.5), doc="exponent"),
    ),
    inputs=("x",),
    equation="L(x) = L_inf + (x0 / x)^alpha",
    reference="Henighan et al. 2020, 'Scaling Laws for Autoregressive Generative Modeling', eq. (1.1)",
)
"""Henighan et al.'s saturating power law `L = L_inf + (x0 / x)^alpha` (x: parameters, data or compute).

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("henighan").param_names
    ('L_inf', 'x0', 'alpha')

References:
    Henighan et al. 2020, Scaling Laws for Autoregressive Generative Modeling, eq. (1.1).
"""


densing = Law(
    name="densing",
    fn=lambda p, x: jnp.exp(p["A"] * x["t"] + p["B"]),
    log_fn=lambda p, x: p["A"] * x["t"] + p["B"],
    params=(
        Param("A", grid=(-0.1, 0.0, 0.01, 0.1), doc="growth rate of log density per unit of time"),
        Param("B", grid=(-10.0, -3.0, 0.0, 3.0), doc="log density at t = 0"),
    ),
    inputs=("t",),
    positive_inputs=(),
    equation="ln rho_max(t) = A t + B",
    reference="Xiao et al. 2024, 'Densing Law of LLMs', eq. (5)",
)
"""The densing law: the capability density of the best models grows exponentially in time t.

Density is effective parameters over actual parameters; Xiao et al. find
A ~ 0.007 per day (density doubling about every 3.3 months). t may be any
real number (days since a reference date).

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("densing").inputs
    ('t',)

References:
    Xiao et al. 2024, Densing Law of LLMs, eq. (5).
"""

"""One-variable power laws, with and without an irreducible term."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._law import Law, Param, log_sum_exp


def _power_log(p, x):
    return log_sum_exp(jnp.log(p["E"]), jnp.log(p["A"]) - p["alpha"] * jnp.log(x["x"]))


power = Law(
    name="power",
    fn=lambda p, x: p["E"] + p["A"] * x["x"] ** -p["alpha"],
    log_fn=_power_log,
    params=(
        Param(
            "E",
            lower=0,
            grid=tuple(np.exp(np.arange(-3.0, 2.1, 1.0))),
            doc="irreducible value",
            prior=("LogNormal", -0.5, 2.0),
        ),
        Param(
            "A",
            lower=0,
            grid=tuple(np.exp(np.arange(-2.0, 20.1, 4.0))),
            doc="coefficient",
            prior=("LogNormal", 5.0, 6.0),
        ),
        Param("alpha", grid=(0.1, 0.3, 0.6, 1.0), doc="exponent", prior=("Normal", 0.5, 0.5)),
    ),
    inputs=("x",),
    equation="y = E + A x^-alpha",
    reference="Hestness et al. 2017, 'Deep Learning Scaling is Predictable, Empirically' (power law plus a floor)",
)
"""A saturating power law `y = E + A x^-alpha` in one input `x`.

Priors (for `scalejax.posterior`): E ~ LogNormal(-0.5, 2), A ~ LogNormal(5, 6)
(the start grid's log A range -2..20 within 2 sd), alpha ~ Normal(0.5, 0.5).

References:
    Hestness et al. 2017, Deep Learning Scaling is Predictable, Empirically.
"""


powerlaw = Law(
    name="powerlaw",
    fn=lambda p, x: p["A"] * x["x"] ** -p["alpha"],
    log_fn=lambda p, x: jnp.log(p["A"]) - p["alpha"] * jnp.log(x["x"]),
    params=(
        Param("A", lower=0, grid=(1.0, 1e3), doc="coefficient", prior=("LogNormal", 2.0, 5.0)),
        Param("alpha", grid=(-0.5, 0.5), doc="exponent (negative for growth)", prior=("Normal", 0.0, 1.0)),
    ),
    inputs=("x",),
    equation="y = A x^-alpha",
    reference="Kaplan et al. 2020, 'Scaling Laws for Neural Language Models' (pure power laws, eqs. 1.1-1.3)",
)
"""A pure power law `y = A x^-alpha`: a straight line in log-log space.

Priors (for `scalejax.posterior`): A ~ LogNormal(2, 5), alpha ~ Normal(0, 1).

References:
    Kaplan et al. 2020, Scaling Laws for Neural Language Models, eqs. (1.1)-(1.3).
"""

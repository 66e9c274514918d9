"""The log-linear law `y = a + b ln x` of test-time compute and retrieval scaling."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param

loglinear = Law(
    name="loglinear",
    fn=lambda p, x: p["a"] + p["b"] * jnp.log(x["x"]),
    params=(
        Param("a", grid=(0.0, 0.5), doc="value at x = 1"),
        Param("b", grid=(-0.1, 0.1), doc="change per factor e of x"),
    ),
    inputs=("x",),
    equation="y = a + b ln(x)",
    reference=(
        "the log-linear trend of test-time compute (Snell et al. 2024; Muennighoff et al. 2025, 's1') "
        "and retrieval datastore scaling (Shao et al. 2024)"
    ),
)
"""A straight line in log x: `y = a + b ln x` (accuracy against test-time compute, datastore size, samples).

Fit it on the raw scale (`loss="squared"`): y may be negative or cross zero.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("loglinear").param_names
    ('a', 'b')

References:
    Snell et al. 2024, Scaling LLM Test-Time Compute Optimally can be More Effective than Scaling Model
    Parameters; Muennighoff et al. 2025, s1: Simple test-time scaling; Shao et al. 2024, Scaling
    Retrieval-Based Language Models with a Trillion-Token Datastore. These papers report the trend as a
    straight line on a log-x axis, not as a numbered equation.
"""

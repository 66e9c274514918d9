"""Broken neural scaling laws (Caballero et al. 2023): a power law bent smoothly at k breaks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .._errors import LawError
from .._law import Law, Param, log_sum_exp


@functools.cache
def bnsl_law(breaks: int = 1) -> Law:
    """The broken neural scaling law with `breaks` smooth breaks.

    `y = a + b x^-c0 prod_i (1 + (x / d_i)^(1 / f_i))^(-c_i f_i)`: each break i
    at x ~ d_i adds c_i to the slope on the log-log scale, over a transition of
    sharpness f_i (smaller is sharper).

    Args:
        breaks: the number of breaks (1 to 4).

    Returns:
        A `Law` (the same object for the same `breaks`) named `"bnsl"` (one break) or `"bnsl<k>"`, with parameters
        `a, b, c0` then `c<i>, d<i>, f<i>` per break.

    Example:
        >>> import scalejax as sj
        >>> sj.laws.bnsl_law(2).param_names
        ('a', 'b', 'c0', 'c1', 'd1', 'f1', 'c2', 'd2', 'f2')

    References:
        Caballero et al. 2023, 'Broken Neural Scaling Laws', eq. (1).
    """
    if not (isinstance(breaks, int) and 1 <= breaks <= 4):
        raise LawError(f"breaks must be an integer from 1 to 4, got {breaks!r}")

    def log_fn(p, x):
        log_x = jnp.log(x["x"])
        bent = jnp.log(p["b"]) - p["c0"] * log_x
        for i in range(1, breaks + 1):
            c, d, f = p[f"c{i}"], p[f"d{i}"], p[f"f{i}"]
            bent = bent - c * f * jax.nn.softplus((log_x - jnp.log(d)) / f)
        return log_sum_exp(jnp.log(p["a"]), bent)

    # Break locations spread over a wide range of scales; fewer values per break as k grows.
    d_grid = {1: (1e1, 1e2, 1e3, 1e4, 1e6, 1e8), 2: (1e2, 1e4, 1e6), 3: (1e2, 1e5), 4: (1e3,)}[breaks]
    params = [
        Param("a", lower=0, grid=(1e-3, 0.3) if breaks < 3 else (0.1,), doc="limit as x grows"),
        Param("b", lower=0, grid=(1.0, 10.0) if breaks < 3 else (3.0,), doc="scale of the bent power law"),
        Param("c0", grid=(0.0, 0.3), doc="initial log-log slope"),
    ]
    for i in range(1, breaks + 1):
        params += [
            Param(f"c{i}", grid=(0.5, 2.0) if breaks > 1 else (0.3, 1.0, 3.0), doc=f"slope change at break {i}"),
            Param(f"d{i}", lower=0, grid=d_grid, doc=f"location of break {i}"),
            Param(f"f{i}", lower=0, grid=(0.1, 1.0) if breaks == 1 else (0.3,), doc=f"smoothness of break {i}"),
        ]
    name = "bnsl" if breaks == 1 else f"bnsl{breaks}"
    return Law(
        name=name,
        fn=lambda p, x: jnp.exp(log_fn(p, x)),
        log_fn=log_fn,
        params=tuple(params),
        inputs=("x",),
        equation="y = a + b x^-c0 " + " ".join(f"(1 + (x/d{i})^(1/f{i}))^(-c{i} f{i})" for i in range(1, breaks + 1)),
        reference="Caballero et al. 2023, 'Broken Neural Scaling Laws', eq. (1)",
    )


bnsl = bnsl_law(1)
bnsl2 = bnsl_law(2)

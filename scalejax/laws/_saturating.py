"""Saturating and exponential laws: Henighan's power law with an offset, the densing law (time trend and capability model)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

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


densing_capability = Law(
    name="densing_capability",
    fn=lambda p, x: p["c"] / (1.0 + jnp.exp(-p["gamma"] * (x["L"] - p["l"]))) + p["d"],
    params=(
        Param("c", lower=0, grid=(0.5, 1.0), doc="range of the capability score"),
        Param(
            "gamma", upper=0, grid=(-10.0, -3.0, -1.0), doc="slope in loss (negative: capability falls as loss rises)"
        ),
        Param("l", lower=0, grid=(1.0, 2.0, 3.0), doc="loss at the midpoint"),
        Param("d", lower=0, grid=(0.05, 0.25), doc="floor of the capability score"),
    ),
    inputs=("L",),
    positive_inputs=(),
    equation="S(L) = c / (1 + exp(-gamma (L - l))) + d, gamma < 0",
    reference="Xiao et al. 2024, 'Densing Law of LLMs', Section 2 (performance estimation)",
)
"""The densing law's capability model, step 2: a downstream score S as a sigmoid of the loss L.

Xiao et al. measure a model's effective parameter size N_hat as the size a
reference family needs for the same score, in two steps fitted on reference
models: the loss `L = a N^-alpha + b D^-beta` (Chinchilla's law without its
floor: `sj.constrain("chinchilla", fixed={"E": 0})`), then the score
`S = c / (1 + exp(-gamma (L - l))) + d` (this law; gamma < 0, so the score
falls as the loss rises). `densing_effective_params` inverts both; a model's
density is `N_hat / N`, and the best densities grow exponentially in time
(`densing`). One law of S in (N, D) would not be identified (scaling L, l and
1/gamma together leaves S unchanged), hence the two fitted steps.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("densing_capability").param_names
    ('c', 'gamma', 'l', 'd')

References:
    Xiao et al. 2024, Densing Law of LLMs, Section 2 (the two-step estimation of the effective parameter
    size). Written from memory of the paper (its text could not be retrieved here): the loss and sigmoid
    forms are as recalled, the sign of gamma is this law's convention, and equation numbers are not given.
"""


def densing_effective_params(loss_params, capability_params, S, D):
    """The effective parameter size `N_hat`: the reference size whose predicted score at `D` tokens is `S`.

    The closed-form inverse of the two steps: `L = l + ln(c / (S - d) - 1) / (-gamma)` from
    `densing_capability`, then `N_hat = (A / (L - E - B D^-beta))^(1 / alpha)` from the loss law.

    Args:
        loss_params: the loss step's parameters with Chinchilla's names `A, B, alpha, beta`
            and optionally `E` (0 when absent, as in the densing paper).
        capability_params: the fitted `c, gamma, l, d` of `densing_capability`.
        S: capability scores (array-like).
        D: the tokens at which to read the size (array-like).

    Returns:
        `N_hat` as a NumPy array; NaN where `S` lies outside the score's range
        `(d, c + d)` or no size reaches it.

    Example:
        >>> import scalejax as sj
        >>> loss = dict(A=50.0, B=400.0, alpha=0.3, beta=0.3)
        >>> cap = dict(c=0.7, gamma=-4.0, l=2.5, d=0.25)
        >>> bool(sj.laws.densing_effective_params(loss, cap, S=[0.6], D=[1e12])[0] > 0)
        True

    References:
        Xiao et al. 2024, Densing Law of LLMs, Section 2 (density = effective / actual parameters).
    """
    q = {k: np.asarray(v, dtype=np.float64) for k, v in {**loss_params, **capability_params}.items()}
    floor = q.get("E", np.float64(0.0))
    s, d_tokens = np.asarray(S, dtype=np.float64), np.asarray(D, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        loss = q["l"] + np.log(q["c"] / (s - q["d"]) - 1.0) / -q["gamma"]
        reducible = loss - floor - q["B"] * d_tokens ** -q["beta"]
        n_hat = (q["A"] / reducible) ** (1.0 / q["alpha"])
    return np.where(np.isfinite(n_hat) & (reducible > 0), n_hat, np.nan)

"""The data-filtering law of Goyal et al. (2024): a data pool's utility decays each time it is repeated."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._errors import LawError
from .._law import Law, Param, log_sum_exp

MAX_REPEATS = 256


def data_filtering_law(max_repeats: int = MAX_REPEATS) -> Law:
    """Goyal et al.'s law for training on a pool of `S` unique samples for `n` samples in all.

    The error after `n` samples follows `y = a n^b` while every sample is new
    (`b < 0` is the pool's utility). During the `j`-th pass over the pool the
    utility has decayed to `b_j = b 2^(-(j-1)/tau)` (a half-life of `tau`
    repetitions), so the error falls by `(n_j / n_{j-1})^(b_j)` over that pass:

        y(n) = d + a min(n, S)^b  prod_{j >= 2} (min(n, j S) / ((j-1) S))^(b_j)   over passes j begun,

    with `d` an irreducible floor (the paper's pure power law is `d = 0`).

    Args:
        max_repeats: the most passes over the pool the law can express (a
            fixed length keeps the law a plain vectorised function); the
            prediction is NaN where `n / S` exceeds it.

    Returns:
        A `Law` with inputs `n` (samples seen) and `S` (unique samples in the
        pool) and parameters `a, b, tau, d`.

    Example:
        >>> import scalejax as sj
        >>> sj.laws.get("data_filtering").inputs
        ('n', 'S')

    References:
        Goyal, Maini, Lipton, Raghunathan and Kolter 2024, Scaling Laws for Data Filtering -- Data Curation
        cannot be Compute Agnostic (CVPR 2024), Section 3: the power law `y = a n^b` (eq. 1) and the
        repetition-decayed utility with half-life tau (eqs. 3-4). Checked against the authors' reference
        implementation (locuslab/scaling_laws_data_filtering, `objective.py`, `func_effective_utility`:
        utility `b * 0.5 ** (epoch / tau)`, error multiplied by `(n_j / n_{j-1}) ** b_j` per pass); the paper's
        text could not be retrieved here, so the equation numbers are from memory. The reference code
        multiplies the floor `d` by the per-pass factors too; here the floor stays additive (the two agree
        for `d = 0`).
    """
    if not (isinstance(max_repeats, int) and max_repeats >= 1):
        raise LawError(f"max_repeats must be a positive integer, got {max_repeats!r}")
    passes = np.arange(1, max_repeats + 1, dtype=np.float64)  # a NumPy constant: no device work at import

    def log_excess(p, x):
        n, s = x["n"][..., None], x["S"][..., None]
        # log(min(n, j S) / ((j-1) S)) for passes begun (0 for the rest); the first pass is log(min(n, S)).
        upper = jnp.log(jnp.minimum(n, passes * s))
        lower = jnp.where(passes > 1, jnp.log(jnp.maximum(passes - 1.0, 1.0) * s), 0.0)
        gain = jnp.where(passes > 1, jnp.maximum(upper - lower, 0.0), upper)
        utility = p["b"] * jnp.exp2(-(passes - 1.0) / p["tau"])
        value = jnp.log(p["a"]) + jnp.sum(utility * gain, axis=-1)
        return jnp.where(x["n"] / x["S"] > max_repeats, jnp.nan, value)

    def log_fn(p, x):
        return log_sum_exp(jnp.log(p["d"]), log_excess(p, x))

    return Law(
        name="data_filtering" if max_repeats == MAX_REPEATS else f"data_filtering[max_repeats={max_repeats}]",
        fn=lambda p, x: jnp.exp(log_fn(p, x)),
        log_fn=log_fn,
        params=(
            Param("a", lower=0, grid=(1.0, 10.0, 100.0), doc="scale of the power law in samples seen"),
            Param("b", upper=0, grid=(-0.3, -0.1, -0.03), doc="utility: the exponent while samples are new (< 0)"),
            Param("tau", lower=0, grid=(1.0, 5.0, 30.0), doc="half-life of the utility, in repetitions"),
            Param("d", lower=0, grid=(1e-3, 0.1, 0.3), doc="irreducible error"),
        ),
        inputs=("n", "S"),
        equation="y = d + a min(n,S)^b prod_{j>=2} (min(n, jS) / ((j-1)S))^(b 2^(-(j-1)/tau))",
        reference=(
            "Goyal et al. 2024, 'Scaling Laws for Data Filtering -- Data Curation cannot be Compute Agnostic', "
            "Section 3 (eqs. 1, 3-4)"
        ),
    )


data_filtering = data_filtering_law()
"""Goyal et al.'s data-filtering law: error against samples seen `n` from a pool of `S` unique samples.

See `data_filtering_law` for the equation and its options.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("data_filtering").param_names
    ('a', 'b', 'tau', 'd')

References:
    Goyal et al. 2024, Scaling Laws for Data Filtering -- Data Curation cannot be Compute Agnostic, Section 3.
"""

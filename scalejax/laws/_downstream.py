"""Links from loss to downstream metrics: exponential error, sigmoid accuracy with a floor, BLEU log-law."""

from __future__ import annotations

import jax.numpy as jnp

from .._errors import LawError
from .._law import Law, Param

downstream_exp = Law(
    name="downstream_exp",
    fn=lambda p, x: p["eps"] - p["k"] * jnp.exp(-p["gamma"] * x["L"]),
    params=(
        Param("eps", lower=0, grid=(0.5, 0.8, 1.0), doc="error at infinite loss (random chance)"),
        Param("k", lower=0, grid=(1.0, 10.0, 100.0), doc="scale of the gain"),
        Param("gamma", lower=0, grid=(0.5, 1.0, 2.0, 4.0), doc="rate of the gain in loss"),
    ),
    inputs=("L",),
    positive_inputs=(),
    equation="Err(L) = eps - k exp(-gamma L)",
    reference=(
        "Gadre et al. 2024, 'Language models scale reliably with over-training and on downstream tasks', eq. (5)"
    ),
)
"""Gadre et al.'s link from loss L to top-1 error: `Err = eps - k exp(-gamma L)`.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("downstream_exp").param_names
    ('eps', 'k', 'gamma')

References:
    Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks, eq. (5).
"""


def sigmoid_floor_law(top: float | None = 1.0) -> Law:
    """Bhagia et al.'s step-2 sigmoid `Acc(L) = a / (1 + exp(-k (L - L0))) + b`, with its top bounded by `top`.

    In the paper's convention `b` is the top (the accuracy as task loss falls
    to 0), `a < 0` the drop from the top to the floor (the floor is `a + b`),
    `k > 0` the slope and `L0` the midpoint. For accuracies `top=1` (the
    default law `sigmoid_floor`): `0 < b < 1` and `-1 < a < 0`, the bounds of
    the paper's fit. `top=None` leaves the top unbounded (for scores that are
    not fractions). The law is defined at `L = 0`, so the paper's anchor point
    (task loss 0, accuracy 1) can be fitted.

    Args:
        top: the largest value the metric can take, or None.

    Returns:
        A `Law` with inputs `L` and parameters `a, b, k, L0`.

    Example:
        >>> import scalejax as sj
        >>> law = sj.laws.sigmoid_floor_law(top=100.0)   # accuracy in percent
        >>> law.params[1].upper
        100.0

    References:
        Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders, eq. (2);
        the bounds are those of the paper's step-2 fit (allenai/OLMo-ladder, `step2.py`).
    """
    if top is not None and not (isinstance(top, int | float) and top > 0):
        raise LawError(f"top must be a positive number or None, got {top!r}")
    top = None if top is None else float(top)
    scale = 1.0 if top is None else top
    bounded = top is not None
    return Law(
        name="sigmoid_floor" if top == 1.0 else f"sigmoid_floor[top={top}]",
        fn=lambda p, x: p["a"] / (1.0 + jnp.exp(-p["k"] * (x["L"] - p["L0"]))) + p["b"],
        params=(
            Param(
                "a",
                lower=-top if bounded else None,
                upper=0,
                grid=tuple(scale * v for v in (-0.75, -0.4)),
                doc="floor minus top (negative): the accuracy lost as task loss rises",
            ),
            Param(
                "b",
                lower=0,
                upper=top,
                grid=tuple(scale * v for v in (0.7, 0.95)),
                doc="top: the accuracy as task loss falls to 0" + (f" (at most {top:g})" if bounded else ""),
            ),
            Param("k", lower=0, grid=(3.0, 8.0, 20.0), doc="slope (accuracy falls as task loss rises)"),
            Param("L0", lower=0, grid=(0.5, 1.0, 1.5, 2.0), doc="task loss at the midpoint"),
        ),
        inputs=("L",),
        positive_inputs=(),
        equation="Acc(L) = a / (1 + exp(-k (L - L0))) + b, a < 0, k > 0" + (f", b < {top:g}" if bounded else ""),
        reference=(
            "Bhagia et al. 2024, 'Establishing Task Scaling Laws via Compute-Efficient Model Ladders', eq. (2) (step 2)"
        ),
    )


sigmoid_floor = sigmoid_floor_law()
"""The OLMo ladder's second step: accuracy as a sigmoid of task loss (bits per byte), its top bounded at 1.

`b` is the top (at most 1), `a < 0` the drop to the floor `a + b`, `k > 0`
the slope, `L0` the midpoint; see `sigmoid_floor_law` for other tops.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("sigmoid_floor").param_names
    ('a', 'b', 'k', 'L0')

References:
    Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders, eq. (2).
"""


isik_bleu = Law(
    name="isik_bleu",
    fn=lambda p, x: (jnp.log(p["A"]) + p["alpha"] * jnp.log(x["D"])) ** p["beta"],
    log_fn=lambda p, x: p["beta"] * jnp.log(jnp.log(p["A"]) + p["alpha"] * jnp.log(x["D"])),
    params=(
        Param("A", lower=0, grid=(1e-3, 1.0, 1e3), doc="scale inside the log"),
        Param("alpha", lower=0, grid=(0.05, 0.2, 0.5), doc="pretraining-data exponent inside the log"),
        Param("beta", grid=(0.5, 1.0, 2.0, 4.0), doc="outer exponent"),
    ),
    inputs=("D",),
    equation="BLEU(D) = (log(A D^alpha))^beta",
    reference="Isik et al. 2024, 'Scaling Laws for Downstream Task Performance of Large Language Models', eq. (1)",
)
"""Isik et al.'s log-law for translation quality against pretraining data D: `BLEU = (log(A D^alpha))^beta`.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("isik_bleu").inputs
    ('D',)

References:
    Isik et al. 2024, Scaling Laws for Downstream Task Performance of Large Language Models, eq. (1).
"""


exp_power = Law(
    name="exp_power",
    fn=lambda p, x: jnp.exp(-p["c"] * x["x"] ** -p["alpha"]),
    log_fn=lambda p, x: -p["c"] * jnp.exp(-p["alpha"] * jnp.log(x["x"])),
    params=(
        Param("c", lower=0, grid=(0.1, 10.0, 1e3, 1e5), doc="scale"),
        Param("alpha", grid=(-0.5, 0.1, 0.3, 0.6), doc="exponent (negative: the rate falls with x)"),
    ),
    inputs=("x",),
    equation="y = exp(-c x^-alpha)",
    reference=(
        "Hu et al. 2024, 'Predicting Emergent Abilities with Infinite Resolution Evaluation' (PassUntil, eq. (3)); "
        "Brown et al. 2024, 'Large Language Monkeys' (coverage, eq. (2))"
    ),
)
"""The exponentiated power law `y = exp(-c x^-alpha)`: a pass rate whose log is a power law.

PassUntil's task pass rate against model size, and repeated-sampling coverage
against the number of samples, both follow it (`-log y` is a pure power law).

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("exp_power").param_names
    ('c', 'alpha')

References:
    Hu et al. 2024, Predicting Emergent Abilities with Infinite Resolution Evaluation, eq. (3).
    Brown et al. 2024, Large Language Monkeys: Scaling Inference Compute with Repeated Sampling, eq. (2).
"""

"""Influence of each run on a forecast: the derivative of a target of the fit in the point weights.

At the optimum `u*(w)` of `F(u, w) = sum_i w_i rho(r_i(u))` the gradient
vanishes, so `d u* / d w_i = -H^-1 rho'(r_i) grad r_i`, with `H` the Hessian
of `F` at the optimum. That derivative is the functional core's
(`scalejax._implicit.optimum`, the one `scalejax.functional.fit` uses):
`jax.grad` of the target through it ranks the runs that drive the target,
with no refit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .. import _implicit
from .._draws import Draws, law_inputs
from .._errors import FitError, ScalejaxError
from .._objectives import residuals

__all__ = ["influence", "target_function"]


def target_function(draws: Draws, target) -> tuple[Callable, tuple]:
    """A scalar target of the parameters as `(fn, args)` with `fn(params, *args)`: a callable
    `target(params)`, or the prediction at one point (a dict of inputs).
    """
    if callable(target):
        return _call, (target,)
    if isinstance(target, Mapping | pd.DataFrame):
        x = law_inputs(draws.law, target, draws.columns)
        if next(iter(x.values())).shape != (1,):
            raise ScalejaxError("a target given as inputs must be one point (one value per input)")
        return _prediction_at, (draws.law, x)
    raise ScalejaxError("target must be a function of the parameters or one point as a dict of inputs")


def _call(p, fn):
    return fn(p)


def _prediction_at(p, law, x):
    return law.predict(p, x)[0]


def influence(draws: Draws, target) -> pd.DataFrame:
    """How much each run moves a forecast: `d target / d w_i` at the full-data fit, ranked.

    Args:
        draws: a `Fit` or a `Bootstrap` (its full-data fit is used).
        target: a function of one parameter set returning a scalar (e.g. the
            compute-optimal N at 1e24 FLOPs), or one point as a dict of inputs
            (the predicted y there).

    Returns:
        One row per run (its row label), most influential first: the law's
        inputs, `y`, `residual` (fitted scale), `weight`, `d_target_d_weight`
        (the derivative of the target in the run's weight) and `drop_effect`
        (`-weight * d_target_d_weight`: the first-order change of the target
        if the run were dropped). `attrs["target"]` is the target at the fit.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> table = sj.analysis.influence(fit, {"N": 70e9, "D": 1.4e12})
        >>> list(table.columns[-2:])
        ['d_target_d_weight', 'drop_effect']

    References:
        Koh and Liang 2017, Understanding Black-box Predictions via Influence Functions (ICML);
        Cook 1977, Detection of Influential Observation in Linear Regression.
    """
    # The fit's data and optimum: the only place this function reads the draws.
    if not isinstance(draws, Draws) or draws.data is None or draws.loss is None:
        raise ScalejaxError(
            f"influence needs the optimum of an objective and its data (a Fit or a Bootstrap), got {type(draws).__name__}"
        )
    law, loss, data, center_u = draws.law, draws.loss, draws.data, draws.center_u
    target_fn, target_args = target_function(draws, target)

    def fn(p):
        return target_fn(p, *target_args)

    with jax.enable_x64(True):
        x = {k: jnp.asarray(v) for k, v in data.x.items()}
        y = jnp.asarray(data.target(loss.log_scale))
        w = jnp.asarray(data.weights)

        def target_at(weights, u):
            u = _implicit.optimum(law, loss, u, jnp.asarray(True), x, y, weights)
            return jnp.asarray(fn(law.unpack(u)), dtype=jnp.float64).reshape(())

        def pieces(u):
            q, d_q = jax.value_and_grad(target_at)(w, u)
            singular = _implicit.is_singular(_implicit.hessian(law, loss, u, x, y, w))
            return q, d_q, singular, residuals(law, loss, u, x, y)

        q, d_q, singular, r = (np.asarray(a) for a in jax.jit(pieces)(jnp.asarray(center_u)))
    if singular:
        raise FitError(
            "the objective's Hessian at the optimum is not positive definite (a flat direction, e.g. a Huber fit "
            "with too few points inside delta); influence is undefined there: refit with loss='squared_log'"
        )
    # For a run of weight zero the derivative says what adding it would do.
    table = pd.DataFrame(
        {
            **{name: data.x[name] for name in law.inputs},
            "y": data.y,
            "residual": r,
            "weight": data.weights,
            "d_target_d_weight": d_q,
            "drop_effect": -data.weights * d_q,
        },
        index=data.index,
    )
    table = table.iloc[np.argsort(-np.abs(d_q), kind="stable")]
    table.attrs["target"] = float(q)
    return table

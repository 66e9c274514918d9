"""Objectives on residuals: Huber and squared error on the log scale, squared error on the raw scale.

The objective is a weighted *sum* over points (never a mean: averaging makes
quasi-Newton solvers stop early on these tiny objectives).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._errors import ScalejaxError
from ._law import plain_method

__all__ = ["LOSSES", "Loss", "make_loss", "objective", "residuals"]

LOSSES = ("huber", "squared_log", "squared")


class Loss(eqx.Module):
    """A per-point loss `rho(r)` on residuals, with its IRLS weight `rho'(r) / r` (compared by value).

    `huber` and `squared_log` act on `log(prediction) - log(y)`; `squared`
    on `prediction - y`. Huber follows `scipy.special.huber`:
    `r^2 / 2` for `|r| <= delta`, else `delta (|r| - delta / 2)`.

    `over_weight` makes the loss asymmetric: residuals `r > 0` (the law
    predicts above the observation) count `over_weight` times as much as
    those below. With `over_weight > 1` a fit leans towards under-predicting,
    as OLMo-core's asymmetric loss does for loss forecasts (an over-predicted
    loss is the costly mistake when a run is planned on it); 1 is symmetric.
    """

    kind: str = eqx.field(static=True, default="huber")
    delta: float = eqx.field(static=True, default=1e-3)
    over_weight: float = eqx.field(static=True, default=1.0)

    @property
    def log_scale(self) -> bool:
        return self.kind != "squared"

    @plain_method
    def _side(self, r):
        return 1.0 if self.over_weight == 1.0 else jnp.where(r > 0, self.over_weight, 1.0)

    @plain_method
    def rho(self, r):
        if self.kind == "huber":
            # min(|r|, delta) * (|r| - min(|r|, delta) / 2): the two branches without a select.
            a = jnp.abs(r)
            c = jnp.minimum(a, self.delta)
            return self._side(r) * (c * (a - 0.5 * c))
        return self._side(r) * (0.5 * r**2)

    @plain_method
    def curvature(self, r):
        """`rho''(r)`: 1 inside the Huber band, 0 outside; 1 for squared losses (times the side's weight)."""
        if self.kind == "huber":
            return self._side(r) * jnp.where(jnp.abs(r) <= self.delta, 1.0, 0.0)
        return self._side(r) * jnp.ones_like(r)

    @plain_method
    def irls_weight(self, r):
        """`rho'(r) / r`: the weight that makes a weighted least-squares step a majoriser of rho."""
        if self.kind == "huber":
            return self._side(r) * jnp.minimum(1.0, self.delta / jnp.maximum(jnp.abs(r), 1e-300))
        return self._side(r) * jnp.ones_like(r)


def make_loss(loss: str | Loss = "huber", delta: float = 1e-3, over_weight: float = 1.0) -> Loss:
    """Validate a loss name, its Huber delta and its over-prediction weight."""
    if isinstance(loss, Loss):
        return loss
    if loss not in LOSSES:
        raise ScalejaxError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    delta = float(delta)
    if not (delta > 0 and np.isfinite(delta)):
        raise ScalejaxError(f"the Huber delta must be a positive number, got {delta}")
    over_weight = float(over_weight)
    if not (over_weight > 0 and np.isfinite(over_weight)):
        raise ScalejaxError(
            f"over_weight (the weight of over-predictions) must be a positive number, got {over_weight}"
        )
    return Loss(loss, delta, over_weight)


def residuals(law, loss: Loss, u, x, target):
    """Residuals of the law at unconstrained parameters `u` against `target` (log y or y)."""
    p = law.unpack(u)
    pred = law.log_predict(p, x, positive_inputs=True) if loss.log_scale else law.predict(p, x)
    return pred - target


def objective(law, loss: Loss, u, weights, x, target):
    """Weighted sum of `rho` over points; +inf where the law is not finite on a weighted point."""
    rho = loss.rho(residuals(law, loss, u, x, target))
    total = jnp.sum(jnp.where(weights > 0, weights * rho, 0.0))
    return jnp.where(jnp.isfinite(total), total, jnp.inf)

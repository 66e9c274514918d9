"""L-BFGS (optax, zoom line search) for one lane: the path for general smooth objectives.

Written for a single lane and `vmap`-ed by the caller; never raises.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from .._objectives import objective
from ._status import CONVERGED, NONFINITE, RUNNING, LaneState


@functools.cache
def _optimizer():
    """optax's L-BFGS, imported on first use: the default fits solve with LM and never load optax."""
    import optax

    return optax.lbfgs()


def lbfgs_init(law, loss, config, u0, weights, x, target) -> LaneState:
    f0 = objective(law, loss, u0, weights, x, target)
    return LaneState(
        u=u0,
        f=f0,
        status=jnp.where(jnp.isfinite(f0), RUNNING, NONFINITE),
        step=jnp.asarray(0, jnp.int32),
        inner=_optimizer().init(u0),
    )


def lbfgs_step(law, loss, config, s: LaneState, weights, x, target) -> LaneState:
    """One L-BFGS step (with its line search) from lane state `s`."""
    import optax
    import optax.tree_utils as otu

    def fn(u):
        return objective(law, loss, u, weights, x, target)

    value_and_grad = optax.value_and_grad_from_state(fn)
    value, grad = value_and_grad(s.u, state=s.inner)
    updates, inner = _optimizer().update(grad, s.inner, s.u, value=value, grad=grad, value_fn=fn)
    u_new = optax.apply_updates(s.u, updates)
    f_new = otu.tree_get(inner, "value")
    finite = jnp.isfinite(f_new) & jnp.all(jnp.isfinite(u_new))
    scale = jnp.abs(f_new) + config.fscale
    small_change = (s.step > 0) & (jnp.abs(s.f - f_new) <= config.ftol * scale)
    flat = jnp.max(jnp.abs(otu.tree_get(inner, "grad"))) <= config.gtol * scale
    status = jnp.where(~finite, NONFINITE, jnp.where(small_change | flat, CONVERGED, RUNNING))
    return LaneState(u=u_new, f=f_new, status=status, step=s.step + 1, inner=inner)

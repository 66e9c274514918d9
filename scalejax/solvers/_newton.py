"""Damped Newton's method for a smooth scalar function, as one compiled loop (a posterior's mode).

Each step solves `(H + lam (mean|diag H| + 1) I) p = -g` with the exact
Hessian; a step is accepted when it lowers the function, and the damping
falls after an accepted step and rises tenfold after a rejected one (a
Levenberg-Marquardt schedule on the Hessian). Runs inside `lax.while_loop`
with a per-problem status code, so it jits, vmaps and never raises.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._status import CONVERGED, MAX_STEPS, NONFINITE, RUNNING, STALLED

__all__ = ["NewtonResult", "newton_minimize"]


class NewtonResult(NamedTuple):
    x: jax.Array
    f: jax.Array
    hessian: jax.Array
    status: jax.Array
    steps: jax.Array


def newton_minimize(fn, x0, *args, max_steps: int = 200, ftol: float = 1e-12, gtol: float = 1e-6) -> NewtonResult:
    """Minimise `fn(x, *args)` from `x0` by damped Newton steps; trace it inside `jax.jit`.

    Converged when an accepted step lowers `f` by at most `ftol * max(1, |f|)`
    and the largest gradient entry is at most `gtol`, or when no damping
    gives a descending step and the gradient is that small (`STALLED`
    otherwise).

    Returns:
        A `NewtonResult`: the point, `f` there, the Hessian there, status, steps.
    """
    value_and_grad = jax.value_and_grad(fn)
    hessian = jax.hessian(fn)
    eye = jnp.eye(x0.shape[0], dtype=x0.dtype)

    def safe(x):
        f, g = value_and_grad(x, *args)
        ok = jnp.isfinite(f) & jnp.all(jnp.isfinite(g))
        return jnp.where(ok, f, jnp.inf), jnp.where(ok, g, 0.0)

    def hess(x):
        h = hessian(x, *args)
        return jnp.where(jnp.all(jnp.isfinite(h)), h, eye)

    # The state: point, f, gradient, Hessian (current when `fresh` is False), damping, status,
    # steps, and whether the last accepted step met the tolerance (declared at the next
    # iteration, after the Hessian is refreshed there, so the result carries the Hessian at x).
    f0, g0 = safe(x0)
    status0 = jnp.where(jnp.isfinite(f0), RUNNING, NONFINITE)
    false = jnp.asarray(False)
    init = (
        x0,
        f0,
        g0,
        jnp.zeros((x0.shape[0],) * 2, x0.dtype),
        true_(),
        jnp.asarray(1e-3, x0.dtype),
        status0,
        0,
        false,
    )

    def cond(state):
        return state[6] == RUNNING

    def body(state):
        x, f, g, h, fresh, lam, _, step, done = state
        # One Hessian in the loop (compiled once), recomputed only where the point moved.
        h = jax.lax.cond(fresh, hess, lambda _: h, x)
        scale = jnp.mean(jnp.abs(jnp.diag(h))) + 1.0
        p = jnp.linalg.solve(h + lam * scale * eye, -g)
        p = jnp.where(jnp.all(jnp.isfinite(p)), p, jnp.zeros_like(p))
        f_new, g_new = safe(x + p)
        accept = (f_new <= f) & ~done
        small = accept & (f - f_new <= ftol * jnp.maximum(1.0, jnp.abs(f)))
        flat = jnp.max(jnp.abs(jnp.where(accept, g_new, g))) < gtol
        stuck = ~accept & (lam > 1e12)
        status = jnp.where(
            done,
            CONVERGED,
            jnp.where(stuck, jnp.where(flat, CONVERGED, STALLED), jnp.where(step + 1 >= max_steps, MAX_STEPS, RUNNING)),
        )
        return (
            jnp.where(accept, x + p, x),
            jnp.where(accept, f_new, f),
            jnp.where(accept, g_new, g),
            h,
            accept,
            jnp.where(accept, jnp.maximum(lam / 10.0, 1e-9), lam * 10.0),
            status,
            step + 1,
            small & flat,
        )

    x, f, _, h, _, _, status, steps, _ = jax.lax.while_loop(cond, body, init)
    return NewtonResult(x, f, h, status, steps)


def true_():
    return jnp.asarray(True)

"""Levenberg-Marquardt for one lane, with iteratively reweighted steps for robust losses.

Each step solves `(J^T W J + lam diag) p = -J^T W r` where `W` holds the
point weights times the loss's IRLS weight `rho'(r) / r`. For Huber that
quadratic model majorises the objective, so its steps are safe far from the
optimum; for Huber each step also tries the exact Gauss-Newton curvature and
keeps whichever step lowers the objective more.
Written for a single lane and `vmap`-ed by the caller; never raises.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..objectives import objective, residuals
from ._status import CONVERGED, NONFINITE, RUNNING, STALLED, LaneState


class Damping(NamedTuple):
    lam: jax.Array
    nu: jax.Array


def lm_init(law, loss, config, u0, weights, x, target) -> LaneState:
    f0 = objective(law, loss, u0, weights, x, target)
    return LaneState(
        u=u0,
        f=f0,
        status=jnp.where(jnp.isfinite(f0), RUNNING, NONFINITE),
        step=jnp.asarray(0, jnp.int32),
        inner=Damping(lam=jnp.asarray(1e-3, u0.dtype), nu=jnp.asarray(2.0, u0.dtype)),
    )


def lm_advance(law, loss, config, state: LaneState, weights, x, target, step_limit) -> LaneState:
    """Take steps until the lane stops or reaches `step_limit` steps in all."""

    def r_and_aux(u):
        r = residuals(law, loss, u, x, target)
        return r, r

    def cond(s):
        return (s.status == RUNNING) & (s.step < step_limit)

    def body(s):
        lam, nu = s.inner
        jac, r = jax.jacfwd(r_and_aux, has_aux=True)(s.u)
        live = weights > 0
        omega = jnp.where(live, weights * loss.irls_weight(r), 0.0)
        r0 = jnp.where(live, r, 0.0)
        jac = jnp.where(live[:, None] & jnp.isfinite(jac), jac, 0.0)
        g = jac.T @ (omega * r0)
        h = jac.T @ (omega[:, None] * jac)

        def step(hm, damping):
            """Solve the damped model `hm + lam diag(damping)`; the new objective and predicted gain."""
            diag = jnp.diag(damping)
            scale = jnp.maximum(diag, 1e-12 * jnp.max(diag) + 1e-300)
            p = jnp.linalg.solve(hm + lam * jnp.diag(scale), -g)
            p = jnp.where(jnp.all(jnp.isfinite(p)), p, jnp.zeros_like(p))
            f_new = objective(law, loss, s.u + p, weights, x, target)
            predicted = -(g @ p + 0.5 * p @ hm @ p)
            return p, f_new, predicted

        if loss.kind != "huber":
            p, f_new, predicted = step(h, h)
        else:
            curv = jnp.where(live, weights * loss.curvature(r), 0.0)
            h_exact = jac.T @ (curv[:, None] * jac)
            if config.curvature == "exact":
                # Warm lanes (already near an optimum): one step on the exact Gauss-Newton
                # curvature, damped along the majoriser's diagonal, which stays positive where
                # the exact curvature vanishes (points outside the Huber band).
                p, f_new, predicted = step(h_exact, h)
            else:
                # Try both the IRLS majoriser and the exact Gauss-Newton curvature (rho'' = 0
                # outside the Huber band) and keep the better step: near the optimum the
                # majoriser over-estimates curvature and converges only linearly.
                p, f_new, predicted = step(h, h)
                p2, f2, pred2 = step(h_exact, h_exact)
                use_exact = jnp.isfinite(f2) & (f2 < f_new)
                p = jnp.where(use_exact, p2, p)
                f_new = jnp.where(use_exact, f2, f_new)
                predicted = jnp.where(use_exact, pred2, predicted)
        u_new = s.u + p
        actual = s.f - f_new
        ratio = actual / jnp.where(predicted > 0, predicted, jnp.inf)
        accept = jnp.isfinite(f_new) & (actual > 0) & (ratio > 1e-4)

        lam_accept = lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
        new_lam = jnp.where(accept, jnp.maximum(lam_accept, 1e-12), lam * nu)
        new_nu = jnp.where(accept, 2.0, 2.0 * nu)

        f_floor = config.ftol * (jnp.abs(s.f) + config.fscale)
        small_change = accept & (actual <= f_floor) & (predicted <= f_floor)
        small_step = accept & (jnp.linalg.norm(p) <= config.xtol * (jnp.linalg.norm(s.u) + config.xtol))
        flat = jnp.max(jnp.abs(g)) <= config.gtol * (jnp.abs(s.f) + config.fscale)
        # No descending step at any damping: the model cannot improve this point.
        # It is an optimum when the model predicts no gain either, else the lane stalled.
        stuck = ~accept & (new_lam > 1e16)
        status = jnp.where(
            small_change | small_step | flat,
            CONVERGED,
            jnp.where(stuck, jnp.where(predicted <= f_floor, CONVERGED, STALLED), RUNNING),
        )
        return LaneState(
            u=jnp.where(accept, u_new, s.u),
            f=jnp.where(accept, f_new, s.f),
            status=status,
            step=s.step + 1,
            inner=Damping(new_lam, new_nu),
        )

    return jax.lax.while_loop(cond, body, state)

"""Derivatives of a fitted optimum from the implicit-function theorem, not from the solver's iterations.

At an optimum `u*` of `F(u, theta) = sum_i w_i rho(r_i(u; x, target))` the
gradient `G(u*, theta) = grad_u F` vanishes, so for a change `d theta` of the
data (inputs `x`, fitted-scale targets, point weights) the optimum moves by
`d u* = -H^-1 (d G / d theta) d theta`, with `H = d G / d u` the objective's
Hessian at `u*`. `optimum` is the identity on `u*` whose JVP is that formula;
JAX transposes it for reverse mode, so `jax.grad`, `jax.jacfwd`, `jax.jvp`
and `jax.vmap` all see exact derivatives of the optimum at the cost of one
`p x p` solve, whatever the number of solver steps.

Where `H` is singular or not positive definite the optimum is not unique (a
flat direction) or not a strict minimum, and there is no derivative: the JVP
is NaN there, never a number from an arbitrary pseudo-inverse.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ._objectives import residuals
from .solvers._lm import jacobian_rows, spd_solve

__all__ = ["SINGULAR_RTOL", "gradient", "hessian", "is_singular", "objective", "optimal_value", "optimum"]

# Smallest eigenvalue of the unit-diagonal Hessian, relative to its largest, below which the
# optimum counts as not unique. Derivatives lose about log10(condition) digits to rounding, so
# at 1e-10 they still carry about six significant digits in float64.
SINGULAR_RTOL = 1e-10


def _point_terms(law, loss, u, x, target):
    """Residuals, their Jacobian rows `(p, n)` and which points are finite there (others count zero)."""
    r, jac = jacobian_rows(lambda v: residuals(law, loss, v, x, target), u)
    ok = jnp.isfinite(r) & jnp.all(jnp.isfinite(jac), axis=0)
    # Selects, not products: a zero-weight point where the law is not finite (padding, or an
    # input outside the law's domain) must not turn 0 * inf into NaN in the sums or their tangents.
    return jnp.where(ok, r, 0.0), jnp.where(ok, jac, 0.0), ok


def objective(law, loss, u, x, target, weights):
    """`sum_i w_i rho(r_i)` over finite points; linear in every weight, zero-weight points included.

    Equal to `scalejax._objectives.objective` wherever that is finite; unlike
    it, its derivative in the weight of a zero-weight point is that point's
    `rho`, what adding the point would change.
    """
    r = residuals(law, loss, u, x, target)
    ok = jnp.isfinite(r)
    return jnp.sum(jnp.where(ok, weights * loss.rho(jnp.where(ok, r, 0.0)), 0.0))


def gradient(law, loss, u, x, target, weights):
    """`grad_u F = sum_i w_i rho'(r_i) grad_u r_i`, in forward mode (no reverse pass through the law)."""
    r, jac, ok = _point_terms(law, loss, u, x, target)
    slope = jax.jvp(loss.rho, (r,), (jnp.ones_like(r),))[1]  # rho'(r), elementwise
    return jac @ jnp.where(ok, weights * slope, 0.0)


def hessian(law, loss, u, x, target, weights):
    """The objective's exact Hessian `(p, p)` in the unconstrained parameters (forward over forward)."""
    return jax.jacfwd(gradient, argnums=2)(law, loss, u, x, target, weights)


def is_singular(h):
    """Whether a Hessian is singular, not positive definite or not finite (after scaling to unit diagonal)."""
    h = jax.lax.stop_gradient(h)
    diag = jnp.diag(h)
    scale = jnp.sqrt(jnp.where(diag > 0, diag, 1.0))
    eig = jnp.linalg.eigvalsh(h / jnp.outer(scale, scale))
    return (
        ~jnp.all(jnp.isfinite(h))
        | jnp.any(diag <= 0)
        | ~(eig[0] > SINGULAR_RTOL * jnp.maximum(eig[-1], jnp.finfo(h.dtype).tiny))
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def optimum(law, loss, u, valid, x, target, weights):
    """`u`, an optimum of the objective at `(x, target, weights)`, with implicit-function derivatives.

    Args:
        law: the `Law`.
        loss: the `Loss`.
        u: `(p,)` unconstrained parameters at which the objective's gradient vanishes.
        valid: a boolean scalar: False when `u` is not a converged optimum, which makes
            every derivative NaN.
        x: the law's inputs, name -> `(n,)`.
        target: `(n,)` fitted-scale targets (log y for log-scale losses).
        weights: `(n,)` point weights.

    Returns:
        `u` unchanged. Its derivatives with respect to `x`, `target` and `weights` are
        `-H^-1 dG`; NaN where `valid` is False or the Hessian is singular (see `is_singular`).
        `u` itself has no derivative: the optimum does not depend on where the solver started.
    """
    return u


@optimum.defjvp
def _optimum_jvp(law, loss, primals, tangents):
    u, valid, x, target, weights = primals
    _, _, dx, dtarget, dweights = tangents
    # The optimum as a function of the data again (the primal here carries no derivative of its
    # own): differentiating this rule, for second derivatives, then sees how `u` moves with the data.
    u = optimum(law, loss, u, valid, x, target, weights)
    h = hessian(law, loss, u, x, target, weights)
    # A NaN factor, not a select, on the data's tangents and on the result: the map from data
    # tangents to `du` stays linear, and both it and its transpose (reverse mode) come out NaN
    # even where the masks inside `gradient` would zero a select's NaN.
    nan_unless_defined = jnp.where(valid & ~is_singular(h), 1.0, jnp.nan)
    dx, dtarget, dweights = jax.tree.map(lambda t: t * nan_unless_defined, (dx, dtarget, dweights))
    _, dg = jax.jvp(
        lambda x_, t_, w_: gradient(law, loss, u, x_, t_, w_), (x, target, weights), (dx, dtarget, dweights)
    )
    du = -spd_solve(h, dg) * nan_unless_defined
    return u, du


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def optimal_value(law, loss, f, u, x, target, weights):
    """`f`, the objective's value at the optimum `u`, with the envelope theorem's derivatives.

    At an optimum `dF(u*(theta), theta) / d theta = dF / d theta` at fixed `u*`
    (the gradient in `u` vanishes), so the derivative needs no `du*`: it is
    finite even where the optimum is not unique. Pass `u` from `optimum`:
    second derivatives then include how the optimum moves.
    """
    return f


@optimal_value.defjvp
def _optimal_value_jvp(law, loss, primals, tangents):
    f, u, x, target, weights = primals
    _, _, dx, dtarget, dweights = tangents
    _, df = jax.jvp(
        lambda x_, t_, w_: objective(law, loss, u, x_, t_, w_), (x, target, weights), (dx, dtarget, dweights)
    )
    return f, df

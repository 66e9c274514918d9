"""One-dimensional minimisation and root finding that vmap, jit and differentiate.

Both solvers bracket the answer first (a grid for the minimum, the ends of an
interval for the root), then take safeguarded Newton steps: a Newton step
when it stays inside the bracket, bisection otherwise. The answer's
derivative with respect to the parameters comes from the implicit-function
theorem (a `custom_jvp`), not from differentiating the iterations, so it is
exact at the solution and cheap.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["GRID_SIZE", "NEWTON_STEPS", "argmin_1d", "root_1d"]

GRID_SIZE = 257
NEWTON_STEPS = 64


def _safeguarded_newton(g, h, x, a, b, left_is_negative):
    """Zero of `g` in `[a, b]` starting from `x`: Newton inside the bracket, bisection otherwise.

    `left_is_negative` says which sign `g` has left of the zero; where `g` is
    not finite the point is treated as lying on the left (infeasible side).
    """

    def body(_, state):
        x, a, b = state
        gx, hx = g(x), h(x)
        on_left = jnp.where(left_is_negative, gx < 0, gx > 0) | ~jnp.isfinite(gx)
        a = jnp.where(on_left & (gx != 0), x, a)
        b = jnp.where(~on_left & (gx != 0), x, b)
        newton = x - gx / hx
        ok = jnp.isfinite(newton) & (newton > a) & (newton < b)
        x = jnp.where(gx == 0, x, jnp.where(ok, newton, 0.5 * (a + b)))
        return x, a, b

    x, _, _ = jax.lax.fori_loop(0, NEWTON_STEPS, body, (x, a, b))
    return x


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def argmin_1d(fn, lo, hi, theta):
    """The minimiser of `fn(s, theta)` over `s` in `[lo, hi]`; NaN when it lies on an end.

    A grid of `GRID_SIZE` points finds the best cell; safeguarded Newton on
    `d fn / d s` then converges to machine precision inside it. Non-finite
    values of `fn` count as +inf (an infeasible region).

    Args:
        fn: `fn(s, theta) -> scalar`, twice differentiable in `s`.
        lo, hi: the search interval.
        theta: a pytree of float parameters; the result is differentiable in them.

    Returns:
        The minimiser `s*` (a scalar), or NaN when the best grid point is an
        end of the interval (no interior minimum found).
    """
    grid = jnp.linspace(lo, hi, GRID_SIZE)
    values = jax.vmap(lambda s: fn(s, theta))(grid)
    values = jnp.where(jnp.isfinite(values), values, jnp.inf)
    i = jnp.argmin(values)
    interior = (i > 0) & (i < GRID_SIZE - 1) & jnp.isfinite(values[i])
    a = grid[jnp.maximum(i - 1, 0)]
    b = grid[jnp.minimum(i + 1, GRID_SIZE - 1)]
    grad = jax.grad(fn)
    hess = jax.grad(grad)
    x = _safeguarded_newton(lambda s: grad(s, theta), lambda s: hess(s, theta), grid[i], a, b, True)
    return jnp.where(interior, x, jnp.nan)


@argmin_1d.defjvp
def _argmin_1d_jvp(fn, primals, tangents):
    lo, hi, theta = primals
    dtheta = tangents[2]
    s = argmin_1d(fn, lo, hi, theta)
    # d/dtheta of grad_s fn(s*(theta), theta) = 0  =>  ds* = -(d grad_s / d theta . dtheta) / hess_s.
    _, dgrad = jax.jvp(lambda th: jax.grad(fn)(s, th), (theta,), (dtheta,))
    hess = jax.grad(jax.grad(fn))(s, theta)
    return s, -dgrad / hess


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def root_1d(fn, lo, hi, theta):
    """The root of `fn(s, theta) = 0` for `s` in `[lo, hi]`; NaN when `fn` has one sign there.

    Args:
        fn: `fn(s, theta) -> scalar`, continuous and differentiable in `s`,
            with opposite signs at `lo` and `hi` (one root between them).
        lo, hi: the bracket.
        theta: a pytree of float parameters; the result is differentiable in them.

    Returns:
        The root (a scalar) or NaN.
    """
    f_lo, f_hi = fn(lo, theta), fn(hi, theta)
    bracketed = jnp.isfinite(f_lo) & jnp.isfinite(f_hi) & (jnp.sign(f_lo) != jnp.sign(f_hi))
    grad = jax.grad(fn)
    x = _safeguarded_newton(lambda s: fn(s, theta), lambda s: grad(s, theta), 0.5 * (lo + hi), lo, hi, f_lo < 0)
    exact = jnp.where(f_lo == 0, lo, jnp.where(f_hi == 0, hi, x))
    return jnp.where(bracketed | (f_lo == 0) | (f_hi == 0), exact, jnp.nan)


@root_1d.defjvp
def _root_1d_jvp(fn, primals, tangents):
    lo, hi, theta = primals
    dtheta = tangents[2]
    s = root_1d(fn, lo, hi, theta)
    _, dfn = jax.jvp(lambda th: fn(s, th), (theta,), (dtheta,))
    return s, -dfn / jax.grad(fn)(s, theta)

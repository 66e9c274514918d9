"""A law fit as a pure JAX function: runs inside `jax.jit`, `jax.vmap` and `jax.grad`.

`fit(law, x, y, ...)` takes JAX arrays and returns the fitted natural
parameters as a dict of arrays; `solve` returns them with the fit's status
and objective. Both run the project's batched Levenberg-Marquardt solver over
every start inside one `lax.while_loop` (no host callbacks, no pandas),
polish the best optimum with Newton steps, and their derivatives with respect to the inputs `x`, the observations `y` and
the point `weights` come from the implicit-function theorem at the optimum
(`scalejax._implicit`), not from differentiating the iterations. So one can
put a fit inside a larger JAX program: `vmap` it over thousands of data sets
or weight vectors, or ask how the fitted exponent, a forecast, or the
compute-optimal allocation moves when one run's loss or weight changes.

Float64: fitting needs it (a Huber delta of 1e-3 on log loss; stopping
tolerances of 1e-12), and a pure function cannot switch it on for its
caller, so these functions raise `ScalejaxError` when JAX's x64 mode is off.
Enable it around the call (`with jax.enable_x64(True): ...`) or for the
program (`jax.config.update("jax_enable_x64", True)`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _implicit
from ._errors import LawError, ScalejaxError
from ._law import Law
from ._objectives import LOSSES, make_loss, objective
from .solvers import METHODS, SolverConfig, _Axes, _Queue, _queue_run, _where_lanes
from .solvers._lbfgs import lbfgs_init, lbfgs_step
from .solvers._lm import lm_init, lm_step, spd_solve
from .solvers._status import CONVERGED, MAX_STEPS, NONFINITE, RUNNING
from .solvers._status import STATUS_NAMES as _SOLVER_STATUS_NAMES

__all__ = ["LOSSES", "SINGULAR", "STATUS_NAMES", "FitResult", "fit", "solve"]

# Not a solver lane's status: the fit converged, but the Hessian at the optimum is singular (the
# optimum is not unique), so it has no derivatives. Kept out of the solvers' codes, which the host
# fit's reports list.
SINGULAR = 4
STATUS_NAMES = {**_SOLVER_STATUS_NAMES, SINGULAR: "singular"}

_INIT = {"lm": lm_init, "lbfgs": lbfgs_init}
_STEP = {"lm": lm_step, "lbfgs": lbfgs_step}


class FitResult(eqx.Module):
    """The result of `solve`: the optimum, how it was reached, and the objective there.

    Every field is an array (a scalar per problem; with a leading axis per
    `vmap`-ed problem), so a `FitResult` passes through `jit` and `vmap`.

    Attributes:
        params: parameter name -> fitted natural value; NaN when no start converged.
            Differentiable in `x`, `y` and `weights` (implicit-function theorem).
        objective: the objective at the optimum (the lowest one reached when no start
            converged); its derivative is the envelope theorem's `d F / d data` at the
            optimum (finite even where the optimum is not unique).
        status: `0` converged; `4` converged but the optimum is not unique (singular
            Hessian: parameters are one of many optima and their derivatives are NaN);
            otherwise the failure of the best start: `1` max_steps, `2` stalled,
            `3` nonfinite (no finite objective, or parameters ran to infinity).
            `STATUS_NAMES` maps codes to names.
        steps: solver steps taken by the start kept.
        n_converged: how many starts converged.
    """

    params: dict
    objective: jax.Array
    status: jax.Array
    steps: jax.Array
    n_converged: jax.Array

    @property
    def converged(self) -> jax.Array:
        """Whether an optimum was found (status 0 or 4)."""
        return (self.status == CONVERGED) | (self.status == SINGULAR)


def fit(
    law: Law | str,
    x: Mapping[str, jax.Array],
    y: jax.Array,
    *,
    weights: jax.Array | None = None,
    init: Mapping[str, jax.Array] | None = None,
    loss: str = "huber",
    delta: float = 1e-3,
    method: str = "lm",
    solver: SolverConfig | None = None,
) -> dict[str, jax.Array]:
    """Fit `law` to `(x, y)` and return the natural parameters: pure JAX, differentiable in `x`, `y`, `weights`.

    The same optimum as `scalejax.fit` from the same starts (the same solver,
    loss and stopping rules, then up to three Newton steps on the exact
    Hessian, which take the optimum from the solver's stopping tolerance,
    about 1e-7 relative in the parameters, to rounding), as a function that
    `jax.jit`, `jax.vmap`, `jax.grad`, `jax.jacfwd` and `jax.jvp` can
    transform. Derivatives come from the implicit-function theorem at the
    optimum. Parameters are NaN
    when no start converged; derivatives are NaN, too, where the optimum is
    not unique (singular Hessian). `solve` returns the same parameters with
    the status that says which, and the objective.

    Needs JAX's float64 mode (see the module docstring); raises `ScalejaxError` otherwise.

    Args:
        law: a `Law`, or the name of a built-in one when not under `jax.jit`.
        x: input name -> `(n,)` array, for every input of the law (other keys are ignored).
        y: `(n,)` observations (> 0 for the log-scale losses).
        weights: `(n,)` non-negative point weights (0 drops a point); default all ones.
        init: natural starting values, name -> scalar (one start) or `(S,)` array
            (a batch of starts, of which the converged one of lowest objective is kept);
            default the law's start grid (`law.start_grid()`), as `scalejax.fit`.
            No derivative flows through `init`.
        loss: `"huber"` on log y (the default), `"squared_log"` or `"squared"` (raw y).
        delta: the Huber delta on the log scale (a Python float).
        method: `"lm"` (Levenberg-Marquardt with IRLS, as `scalejax.fit`) or `"lbfgs"`.
        solver: stopping rules (`scalejax.solvers.SolverConfig`); default as `scalejax.fit`.

    Returns:
        Parameter name -> fitted natural value (0-d arrays).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> law = sj.laws.get("chinchilla")
        >>> starts = {"E": 2.0, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}
        >>> with jax.enable_x64(True):
        ...     x = {"N": jnp.asarray(frame.N.to_numpy()), "D": jnp.asarray(frame.D.to_numpy())}
        ...     y = jnp.asarray(frame.loss.to_numpy())
        ...     alpha = lambda y: sj.functional.fit(law, x, y, init=starts, loss="squared_log")["alpha"]
        ...     d_alpha_d_y = jax.jit(jax.grad(alpha))(y)
        >>> d_alpha_d_y.shape
        (81,)

    References:
        Implicit differentiation of optimisation problems: Blondel et al. 2022,
        Efficient and Modular Implicit Differentiation (NeurIPS); Krantz and Parks 2002,
        The Implicit Function Theorem.
    """
    return solve(law, x, y, weights=weights, init=init, loss=loss, delta=delta, method=method, solver=solver).params


def solve(
    law: Law | str,
    x: Mapping[str, jax.Array],
    y: jax.Array,
    *,
    weights: jax.Array | None = None,
    init: Mapping[str, jax.Array] | None = None,
    loss: str = "huber",
    delta: float = 1e-3,
    method: str = "lm",
    solver: SolverConfig | None = None,
) -> FitResult:
    """`fit` with its status, objective and step counts: a `FitResult`.

    Arguments as `fit`. Use this when a program must tell a converged fit
    from a failed one (under `vmap`, per problem): `fit` is
    `solve(...).params`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> with jax.enable_x64(True):
        ...     x = {"N": jnp.asarray(frame.N.to_numpy()), "D": jnp.asarray(frame.D.to_numpy())}
        ...     out = sj.functional.solve("chinchilla", x, jnp.asarray(frame.loss.to_numpy()),
        ...                               init={"E": 2.0, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3})
        >>> sj.functional.STATUS_NAMES[int(out.status)]
        'converged'
    """
    law = _get_law(law)
    loss_ = make_loss(loss, delta)
    if method not in METHODS:
        raise ScalejaxError(f"unknown solver {method!r}; choose one of {', '.join(METHODS)}")
    config = solver if solver is not None else SolverConfig()
    _require_x64()
    x, y, w = _arrays(law, x, y, weights)
    u0 = _starts(law, init)
    return _solve_compiled(law, loss_, method, config, u0, x, y, w)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _solve_compiled(law, loss, method, config, u0, x, y, w) -> FitResult:
    """`solve` after validation: compiled once per law, options and shapes, also when called eagerly."""
    target = jnp.log(y) if loss.log_scale else y
    u, objective, status, steps, n_converged = _solve_lanes(
        law, loss, method, config, *jax.lax.stop_gradient((u0, x, target, w))
    )
    u = _implicit.optimum(law, loss, u, status == CONVERGED, x, target, w)
    objective = _implicit.optimal_value(law, loss, objective, u, x, target, w)
    return FitResult(params=law.unpack(u), objective=objective, status=status, steps=steps, n_converged=n_converged)


def _get_law(law) -> Law:
    if isinstance(law, Law):
        return law
    from .laws import get  # the laws package imports this module's dependencies; import late

    return get(law)


def _require_x64() -> None:
    if jnp.zeros(()).dtype != jnp.float64:
        raise ScalejaxError(
            "scalejax.functional needs JAX's float64 mode (scaling-law fits resolve log-loss residuals "
            "of 1e-3 with 1e-12 stopping tolerances); call it inside `with jax.enable_x64(True):` or run "
            "`jax.config.update('jax_enable_x64', True)` first"
        )


def _arrays(law: Law, x, y, weights):
    """The law's inputs, `y` and the weights as float64 arrays of one length `n`, checked at trace time."""
    if not isinstance(x, Mapping):
        raise ScalejaxError(f"x must be a dict of input arrays (keys {', '.join(law.inputs)}), got {type(x).__name__}")
    missing = [k for k in law.inputs if k not in x]
    if missing:
        raise ScalejaxError(f"x lacks inputs {missing}; law {law.name!r} needs {', '.join(law.inputs)}")
    y = jnp.asarray(y, dtype=jnp.float64)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ScalejaxError(f"y must be a non-empty 1-D array (one value per run), got shape {y.shape}")
    n = y.shape[0]
    out = {}
    for k in law.inputs:
        v = jnp.asarray(x[k], dtype=jnp.float64)
        if v.shape not in ((n,), (1,), ()):
            raise ScalejaxError(f"input {k!r} has shape {v.shape}; it must be ({n},), one value per element of y")
        out[k] = jnp.broadcast_to(v, (n,))
    if weights is None:
        w = jnp.ones(n)
    else:
        w = jnp.asarray(weights, dtype=jnp.float64)
        if w.shape != (n,):
            raise ScalejaxError(f"weights have shape {w.shape}; they must be ({n},), one per element of y")
    return out, y, w


def _starts(law: Law, init) -> jax.Array:
    """Unconstrained starts `(S, p)` from natural values (a dict) or the law's grid."""
    if init is None:
        return jnp.asarray(law.start_grid())
    if not isinstance(init, Mapping):
        raise ScalejaxError(f"init must be a dict of natural parameter values, got {type(init).__name__}")
    missing = [k for k in law.param_names if k not in init]
    if missing:
        raise LawError(f"law {law.name!r} needs starting values for {missing}")
    values = [init[k] for k in law.param_names]
    if not any(isinstance(v, jax.core.Tracer) for v in values):
        # Concrete starts: say which one lies outside its bounds now, not as a NaN lane later.
        law.pack(np.stack(np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values)), axis=-1))
    values = jnp.broadcast_arrays(*(jnp.asarray(v, dtype=jnp.float64) for v in values))
    if values[0].ndim > 1:
        raise ScalejaxError(f"init values must be scalars or 1-D (one per start), got shape {values[0].shape}")
    u = jnp.stack([_inverse(p, v) for p, v in zip(law.params, values, strict=True)], axis=-1)
    return jax.lax.stop_gradient(jnp.atleast_2d(u))


def _inverse(param, value):
    """`Param.inverse` in JAX (natural -> unconstrained), for starts that may be traced."""
    match param.transform:
        case "identity":
            return value
        case "lower":
            return jnp.log(value - param.lower)
        case "upper":
            return jnp.log(param.upper - value)
        case _:
            t = (value - param.lower) / (param.upper - param.lower)
            return jnp.log(t) - jnp.log1p(-t)


def _slots(n_lanes: int, n_points: int) -> int:
    """Lanes stepped together: about 32k points' worth, as `solve_lanes`, and no more than the lanes."""
    return min(n_lanes, min(256, max(32, 32768 // max(n_points, 1))))


@functools.lru_cache(maxsize=64)
def _lane_solver(law, loss, method, config):
    """`run(u0, weights, x, target)`: solve `L` lanes, each from its start `u0[i]` with weights `weights[i]`.

    `x` values and `target` are `(n,)` (shared) or `(L, n)` (per lane). Under
    `jax.vmap` the problems' lanes are merged into one queue (a custom batching
    rule), so a batch of problems costs the steps its lanes take, as in
    `scalejax.bootstrap`, not the slowest lane's steps times every lane.
    """

    @jax.custom_batching.custom_vmap
    def run(u0, weights, x, target):
        n_lanes = u0.shape[0]
        x_axis = 0 if any(v.ndim == 2 for v in x.values()) else None
        t_axis = 0 if target.ndim == 2 else None
        lanes = jax.vmap(init_one, in_axes=(0, 0, x_axis, t_axis))(u0, weights, x, target)
        k = _slots(n_lanes, target.shape[-1])
        if k >= n_lanes:
            lanes = _step_all(law, loss, method, config, lanes, weights, x, target)
        else:
            # A slot whose lane stops takes the next lane at once: no slot waits for slow lanes.
            queue = _Queue(
                lanes=lanes,
                slot=jnp.full(k, -1, dtype=jnp.int32),
                slots=jax.tree.map(lambda a: a[jnp.zeros(k, dtype=jnp.int32)], lanes),
                head=jnp.asarray(0, jnp.int32),
                n_queued=jnp.asarray(n_lanes, jnp.int32),
            )
            budget = jnp.asarray(np.iinfo(np.int32).max, jnp.int32)
            axes = _Axes(weights=0, x=x_axis, target=t_axis)
            lanes = _queue_run(law, loss, method, config, axes, queue, weights, x, target, budget).lanes
        status = jnp.where(lanes.status == RUNNING, MAX_STEPS, lanes.status)
        return lanes.u, lanes.f, status, lanes.step

    def init_one(u0, w, x, target):
        return _INIT[method](law, loss, config, u0, w, x, target)

    @run.def_vmap
    def _run_batched(axis_size, in_batched, u0, weights, x, target):
        # Merge the problem axis into the lane axis: (B, L, ...) -> (B L, ...).
        n_lanes = u0.shape[-2]
        u0_b, w_b, x_b, t_b = in_batched

        def per_lane(a, batched, trailing):
            """`a` as `(B L, *trailing)`: from (B, L, ...), (B, ...), (L, ...) or (...)."""
            if batched:
                a = a if a.ndim == len(trailing) + 2 else a[:, None]
            else:
                a = a if a.ndim == len(trailing) + 1 else a[None]
                a = a[None]
            return jnp.broadcast_to(a, (axis_size, n_lanes, *trailing)).reshape(-1, *trailing)

        n = target.shape[-1]
        per_lane_x = any(x_b.values()) or any(v.ndim == 2 for v in x.values())
        flat_x = {k: per_lane(v, x_b[k], (n,)) for k, v in x.items()} if per_lane_x else x
        per_lane_t = t_b or target.ndim == 2
        flat_t = per_lane(target, t_b, (n,)) if per_lane_t else target
        out = run(per_lane(u0, u0_b, (u0.shape[-1],)), per_lane(weights, w_b, (n,)), flat_x, flat_t)
        out = jax.tree.map(lambda a: a.reshape(axis_size, n_lanes, *a.shape[1:]), out)
        return out, jax.tree.map(lambda _: True, out)

    return run


def _step_all(law, loss, method, config, lanes, weights, x, target):
    """Step every lane together until all have stopped: for few lanes, where a queue gains nothing."""
    x_axis = 0 if any(v.ndim == 2 for v in x.values()) else None
    step = jax.vmap(
        functools.partial(_STEP[method], law, loss, config), in_axes=(0, 0, x_axis, 0 if target.ndim == 2 else None)
    )

    def running(st):
        return (st.status == RUNNING) & (st.step < config.max_steps)

    def body(st):
        live = running(st)
        return jax.tree.map(lambda new, old: _where_lanes(live, new, old), step(st, weights, x, target), st)

    return jax.lax.while_loop(lambda st: jnp.any(running(st)), body, lanes)


def _solve_lanes(law, loss, method, config, u0, x, target, w):
    """Every start through the solvers' lanes; the converged start of lowest objective.

    Returns `(u, objective, status, steps, n_converged)` for the start kept,
    with `u` NaN when none converged and the status then that of the start of
    lowest objective. No derivative flows through here (see `_implicit.optimum`).
    """
    n_starts = u0.shape[0]
    weights = jnp.broadcast_to(w, (n_starts, w.shape[0]))
    lanes_u, lanes_f, status, steps = _lane_solver(law, loss, method, config)(u0, weights, x, target)

    natural = law.unpack(lanes_u)
    finite = jnp.all(jnp.isfinite(lanes_u), axis=1) & jnp.all(
        jnp.stack([jnp.isfinite(v) for v in natural.values()], axis=1), axis=1
    )
    ok = (status == CONVERGED) & jnp.isfinite(lanes_f) & finite
    any_ok = jnp.any(ok)
    best = jnp.argmin(jnp.where(ok, lanes_f, jnp.inf))
    # With no converged start, report the start of lowest objective and why it failed.
    fallback = jnp.argmin(jnp.where(jnp.isnan(lanes_f), jnp.inf, lanes_f))
    chosen = jnp.where(any_ok, best, fallback)
    lane_status = status[chosen]
    failed = jnp.where(lane_status == CONVERGED, NONFINITE, lane_status)  # converged to infinite parameters
    u, f = _polish(law, loss, jnp.where(any_ok, lanes_u[chosen], u0[0]), lanes_f[chosen], x, target, w)
    singular = _implicit.is_singular(_implicit.hessian(law, loss, u, x, target, w))
    status = jnp.where(any_ok, jnp.where(singular, SINGULAR, CONVERGED), failed).astype(jnp.int32)
    u = jnp.where(any_ok, u, jnp.nan)
    f = jnp.where(any_ok, f, lanes_f[chosen])
    return u, f, status, steps[chosen], jnp.sum(ok).astype(jnp.int32)


POLISH_STEPS = 3
# How far a polishing step may raise the objective, relative: well above its rounding (a sum of
# n terms differs by ~1e-15 relative between two vectorisations), well below what a step across
# a Huber band edge would cost at the solver's distance from the optimum.
POLISH_FTOL = 1e-12


def _polish(law, loss, u, f, x, target, w):
    """Newton steps on the exact Hessian from the solver's optimum, each kept only if it lowers the gradient.

    The solvers stop when a step changes the objective by less than `ftol`
    relative; near the optimum of these tiny objectives that leaves the
    parameters about 1e-8 short, and a warm-started refit of slightly changed
    data may barely move. The optimum is what the implicit-function
    derivatives describe, so a few Newton steps (quadratic convergence) take
    it to machine precision. The objective cannot judge these steps (its
    gains, 1e-20, lie below its rounding), so a step is kept when it lowers
    the gradient and does not raise the objective by more than `POLISH_FTOL`.
    """

    def grad(u):
        return _implicit.gradient(law, loss, u, x, target, w)

    def newton(_, state):
        u, f, g = state
        u_new = u - spd_solve(_implicit.hessian(law, loss, u, x, target, w), g)
        f_new = objective(law, loss, u_new, w, x, target)
        g_new = grad(u_new)
        keep = (
            jnp.all(jnp.isfinite(u_new))
            & jnp.all(jnp.isfinite(g_new))
            & (f_new <= f + POLISH_FTOL * jnp.abs(f))
            & (jnp.max(jnp.abs(g_new)) < jnp.max(jnp.abs(g)))
        )
        return jnp.where(keep, u_new, u), jnp.where(keep, f_new, f), jnp.where(keep, g_new, g)

    u, f, _ = jax.lax.fori_loop(0, POLISH_STEPS, newton, (u, f, grad(u)))
    return u, f

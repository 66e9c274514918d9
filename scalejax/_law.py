"""Laws: pure JAX functions of named parameters and named inputs.

A `Law` holds the prediction function, its parameters (`Param`: bounds that
pick a transform to an unconstrained space, and a grid of starting values)
and the names of its inputs. Solvers work on the unconstrained vector; laws
see natural parameter values in a dict.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import LawError

__all__ = ["Law", "Param", "law", "log_sum_exp"]


def _as_grid(values) -> tuple[float, ...]:
    return tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64)))


class plain_method:
    """Bind a method of an `equinox.Module` as a plain Python method.

    Equinox wraps every bound method of a module in a module of its own, so
    that `jax.jit(module.method)` works; creating that wrapper costs about
    0.1 ms a call, more than the host-side work of methods such as
    `Draws.interval` or `Law.natural`. Methods that are called on the host
    (not passed to `jax.jit` themselves) bind with `functools.partial` instead.
    """

    def __init__(self, fn):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self.fn
        return functools.partial(self.fn, obj)


class _Opaque:
    """A value kept whole as static data (not a pytree), compared and hashed by identity."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Opaque) and other.value is self.value

    def __hash__(self):
        return id(self.value)

    def __repr__(self):
        return repr(self.value)


class Param(eqx.Module):
    """One named parameter of a law (an `equinox.Module` compared by value).

    Bounds choose the transform from the unconstrained space the solvers use:
    no bounds -> identity; `lower` only -> `lower + exp(u)` (so `lower=0` is a
    log transform); `upper` only -> `upper - exp(u)`; both -> a scaled
    sigmoid. The bounds are open: the solver never reaches them.

    Args:
        name: the parameter's name, as in the paper (`"alpha"`, `"E"`).
        lower: open lower bound, or None.
        upper: open upper bound, or None.
        grid: starting values on the natural scale. The law's start grid is
            the Cartesian product of its parameters' grids.
        doc: a short description for tables and docs.
        prior: the prior used by `scalejax.posterior`, on the natural scale: a
            NumPyro distribution, or a spec `(name, *args)` of one
            (`("LogNormal", 7.0, 5.0)`, built only when a posterior needs it, so
            that laws load without NumPyro); None for the default derived from
            the bounds and the grid (see `scalejax.bayes.default_prior`).

    Example:
        >>> import scalejax as sj
        >>> sj.Param("E", lower=0, grid=(1.0, 2.0)) == sj.Param("E", lower=0, grid=[1, 2])
        True
    """

    name: str = eqx.field(static=True)
    lower: float | None = eqx.field(static=True)
    upper: float | None = eqx.field(static=True)
    grid: tuple[float, ...] = eqx.field(static=True)
    doc: str = eqx.field(static=True)
    _prior: object = eqx.field(static=True)

    def __init__(self, name: str, lower=None, upper=None, grid=(), doc: str = "", prior=None):
        self.name = name
        self.lower = None if lower is None else float(lower)
        self.upper = None if upper is None else float(upper)
        self.grid = _as_grid(grid)
        self.doc = doc
        # A distribution object is a pytree of arrays: held opaquely (compared by identity) as static data.
        if isinstance(prior, tuple):  # a spec: the distribution's name, then plain numbers
            prior = tuple(float(a) if isinstance(a, int | float | np.number) else a for a in prior)
        self._prior = prior if prior is None or isinstance(prior, tuple) else _Opaque(prior)

    @plain_method
    def renamed(self, name: str, doc: str | None = None) -> Param:
        """The same parameter under another name (bounds, grid and prior kept)."""
        return Param(name, self.lower, self.upper, self.grid, self.doc if doc is None else doc, self.prior)

    @property
    def prior(self):
        """The declared prior (a distribution or a spec tuple), or None."""
        return self._prior.value if isinstance(self._prior, _Opaque) else self._prior

    def __check_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise LawError(f"parameter name {self.name!r} must be a Python identifier")
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise LawError(f"parameter {self.name!r}: lower {self.lower} must be below upper {self.upper}")
        bad = [v for v in self.grid if not self.contains(v)]
        if bad:
            raise LawError(
                f"parameter {self.name!r}: start values {bad} lie outside its bounds ({self.lower}, {self.upper})"
            )

    @property
    def transform(self) -> str:
        """`"identity"`, `"lower"`, `"upper"` or `"interval"`."""
        if self.lower is None and self.upper is None:
            return "identity"
        if self.upper is None:
            return "lower"
        if self.lower is None:
            return "upper"
        return "interval"

    @plain_method
    def contains(self, value: float) -> bool:
        """Whether `value` lies strictly inside the bounds."""
        return (self.lower is None or value > self.lower) and (self.upper is None or value < self.upper)

    @plain_method
    def start_values(self) -> tuple[float, ...]:
        """The grid, or one default start when none was declared."""
        if self.grid:
            return self.grid
        match self.transform:
            case "identity":
                return (0.5,)
            case "lower":
                return (self.lower + 1.0,)
            case "upper":
                return (self.upper - 1.0,)
            case _:
                return (0.5 * (self.lower + self.upper),)

    @plain_method
    def forward(self, u, xp=jnp):
        """Unconstrained value -> natural value (JAX arrays; NumPy ones with `xp=numpy`)."""
        return _forward(self.transform, self.lower, self.upper, u, xp)

    @plain_method
    def inverse(self, value):
        """Natural value -> unconstrained value (NumPy, for starts and user input)."""
        value = np.asarray(value, dtype=np.float64)
        match self.transform:
            case "identity":
                return value
            case "lower":
                return np.log(value - self.lower)
            case "upper":
                return np.log(self.upper - value)
            case _:
                t = (value - self.lower) / (self.upper - self.lower)
                return np.log(t) - np.log1p(-t)


def _forward(transform: str, lower, upper, u, xp):
    match transform:
        case "identity":
            return u
        case "lower":
            return lower + xp.exp(u)
        case "upper":
            return upper - xp.exp(u)
        case _:
            return lower + (upper - lower) * 0.5 * (xp.tanh(0.5 * u) + 1.0)


def log_sum_exp(*terms):
    """`log(sum(exp(t) for t in terms))`, elementwise and stable: for laws that add positive terms.

    Faster than `jax.scipy.special.logsumexp` for a few broadcast terms, and the
    shift by the largest term carries no gradient (the result does not depend on it).
    """
    terms = jnp.broadcast_arrays(*terms)
    m = terms[0]
    for t in terms[1:]:
        m = jnp.maximum(m, t)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    total = terms[0] - m
    total = jnp.exp(total)
    for t in terms[1:]:
        total = total + jnp.exp(t - m)
    return m + jnp.log(total)


def _powers_of_positive_inputs(fn: Callable, positive: Sequence[str]) -> Callable:
    """`fn` with each power `x ** y` of a positive input `x` evaluated as `exp(y * log(x))`.

    XLA's CPU `pow` is a scalar library call, about 5x slower than `exp` and
    `log` (which vectorise, and `log(x)` of a fixed input is hoisted out of the
    solver's loop): this is where a custom law written as `A / N ** alpha`
    spends its time. For `x > 0` both forms are the same function (the
    rewritten one to a few ulp); the rewrite applies only to inputs declared
    positive, which data validation guarantees. Every other operation runs
    unchanged.
    """

    def rewritten(p, x):
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(p, x)
        leaves = jax.tree_util.tree_flatten_with_path((p, x))[0]
        env = {}
        sure = set()
        for var, (path, value) in zip(closed.jaxpr.invars, leaves, strict=True):
            env[var] = value
            if path[0].idx == 1 and getattr(path[1], "key", None) in positive:
                sure.add(var)
        env.update(zip(closed.jaxpr.constvars, closed.consts, strict=True))

        def read(v):
            return v.val if isinstance(v, jax.extend.core.Literal) else env[v]

        for eqn in closed.jaxpr.eqns:
            args = [read(v) for v in eqn.invars]
            if eqn.primitive is jax.lax.pow_p and eqn.invars[0] in sure:
                out = [jnp.exp(args[1] * jnp.log(args[0]))]
            else:
                with eqn.ctx.manager:
                    out = eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))
                out = out if eqn.primitive.multiple_results else [out]
            env.update(zip(eqn.outvars, out, strict=True))
        result = [read(v) for v in closed.jaxpr.outvars]
        return jax.tree.unflatten(jax.tree.structure(out_shape), result)

    return rewritten


class Law(eqx.Module):
    """A scaling law: `fn(params, inputs) -> y` with named parameters and inputs.

    An `equinox.Module` compared and hashed by value: two laws built the same
    way (the same function, parameters and inputs) are equal and share every
    compiled solver and analysis.

    Args:
        name: short name (`"chinchilla"`).
        fn: `fn(p, x)` with `p` a dict of parameter values and `x` a dict of
            input arrays; returns the prediction on the natural scale. Written
            with `jax.numpy`; derivatives come from JAX.
        params: the parameters, in a fixed order.
        inputs: the names of the inputs (`("N", "D")`).
        log_fn: optional `log_fn(p, x) -> log y`, for laws whose log is more
            stable written directly (sums of positive terms via logsumexp).
        positive_inputs: inputs that must be > 0 (those the law takes logs or
            powers of). Defaults to all inputs; a law defined at 0 lists the others.
        equation: the law as text, for tables and reports.
        reference: the paper it comes from.
    """

    name: str = eqx.field(static=True)
    fn: Callable = eqx.field(static=True)
    params: tuple[Param, ...] = eqx.field(static=True, converter=tuple)
    inputs: tuple[str, ...] = eqx.field(static=True, converter=tuple)
    log_fn: Callable | None = eqx.field(static=True, default=None)
    positive_inputs: tuple[str, ...] | None = eqx.field(
        static=True, default=None, converter=lambda v: None if v is None else tuple(v)
    )
    equation: str = eqx.field(static=True, default="")
    reference: str = eqx.field(static=True, default="")

    def __post_init__(self):
        if self.positive_inputs is None:
            object.__setattr__(self, "positive_inputs", self.inputs)

    def __check_init__(self):
        if not self.params:
            raise LawError(f"law {self.name!r} declares no parameters")
        if not self.inputs:
            raise LawError(f"law {self.name!r} declares no inputs")
        if not all(isinstance(p, Param) for p in self.params):
            raise LawError(f"law {self.name!r}: params must be scalejax.Param objects (or names)")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise LawError(f"law {self.name!r} repeats a parameter name: {names}")
        unknown = set(self.positive_inputs) - set(self.inputs)
        if unknown:
            raise LawError(f"law {self.name!r}: positive_inputs {sorted(unknown)} are not inputs {self.inputs}")

    def __repr__(self) -> str:
        return f"Law({self.name!r}, inputs={self.inputs}, params={self.param_names})"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def n_params(self) -> int:
        return len(self.params)

    @plain_method
    def unpack(self, u, xp=jnp) -> dict:
        """Unconstrained vector(s) `(..., n_params)` -> dict of natural values (NumPy with `xp=numpy`)."""
        return {p.name: _forward(p.transform, p.lower, p.upper, u[..., i], xp) for i, p in enumerate(self.params)}

    @plain_method
    def natural(self, u) -> dict[str, np.ndarray]:
        """`unpack` in NumPy, float64: for results on the host (no compilation)."""
        u = np.asarray(u, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged lane is inf, as in JAX
            return {k: np.asarray(v, dtype=np.float64) for k, v in self.unpack(u, xp=np).items()}

    @plain_method
    def pack(self, values: Mapping[str, float] | Sequence[float]) -> np.ndarray:
        """Natural values (dict by name, or sequence in order) -> unconstrained vector."""
        if isinstance(values, Mapping):
            missing = [n for n in self.param_names if n not in values]
            if missing:
                raise LawError(f"law {self.name!r} needs values for {missing}")
            values = [values[n] for n in self.param_names]
        values = np.asarray(values, dtype=np.float64)
        if values.shape[-1] != self.n_params:
            raise LawError(f"law {self.name!r} has {self.n_params} parameters, got {values.shape[-1]} values")
        for i, p in enumerate(self.params):
            outside = ~np.vectorize(p.contains)(values[..., i])
            if np.any(outside):
                raise LawError(
                    f"parameter {p.name!r} = {values[..., i][outside].ravel()[0]} lies outside its bounds ({p.lower}, {p.upper})"
                )
        return np.stack([p.inverse(values[..., i]) for i, p in enumerate(self.params)], axis=-1)

    @plain_method
    def encode_input(self, name: str, values, *, column=None, row_name: str = "row"):
        """Raw values of input `name` -> numbers; the identity here (a joint law maps group labels to codes).

        Args:
            name: the law input.
            values: the column's values (a pandas Series or an array).
            column: the source column, for error messages.
            row_name: how messages name a row.

        Returns:
            The values, as numbers the law can take.
        """
        return values

    @plain_method
    def evaluate(self, params: Mapping, x: Mapping):
        """The law's own function `fn(p, x)` (a joint law maps groups onto its base law here)."""
        return self.fn(params, x)

    @plain_method
    def log_form(self) -> Callable | None:
        """`log y` as written by the law (`log_fn`), or None when the law has no log form."""
        return self.log_fn

    @plain_method
    def predict(self, params: Mapping, x: Mapping):
        """Prediction on the natural scale."""
        log_form = self.log_form()
        if log_form is not None:
            return jnp.exp(log_form(params, x))
        return self.evaluate(params, x)

    @plain_method
    def log_predict(self, params: Mapping, x: Mapping, *, positive_inputs: bool = False):
        """Prediction on the log scale (NaN where the law predicts y <= 0).

        With `positive_inputs=True` (validated data, as the solvers have) the
        law's powers of its positive inputs are computed as `exp(y log x)`.
        """
        log_form = self.log_form()
        if log_form is not None:
            return log_form(params, x)
        fn = _powers_of_positive_inputs(self.evaluate, self.positive_inputs) if positive_inputs else self.evaluate
        y = fn(params, x)
        return jnp.where(y > 0, jnp.log(jnp.where(y > 0, y, 1.0)), jnp.nan)

    @plain_method
    def start_grid(self) -> np.ndarray:
        """All combinations of the parameters' start values, unconstrained, `(S, n_params)`."""
        values = np.array(list(itertools.product(*(p.start_values() for p in self.params))), dtype=np.float64)
        return self.pack(values)

    @property
    def n_starts(self) -> int:
        return math.prod(len(p.start_values()) for p in self.params)


def law(
    *,
    params: Sequence[Param | str],
    inputs: Sequence[str],
    name: str | None = None,
    log_fn: Callable | None = None,
    positive_inputs: Sequence[str] | None = None,
    equation: str = "",
    reference: str = "",
) -> Callable[[Callable], Law]:
    """Decorator turning a plain JAX function into a `Law`.

    Example:
        >>> import scalejax as sj
        >>> @sj.law(params=[sj.Param("E", lower=0), sj.Param("A", lower=0), "alpha"], inputs=["N"])
        ... def my_law(p, x):
        ...     return p["E"] + p["A"] * x["N"] ** -p["alpha"]
        >>> my_law.param_names
        ('E', 'A', 'alpha')
    """

    def wrap(fn: Callable) -> Law:
        return Law(
            name=name or fn.__name__,
            fn=fn,
            params=tuple(Param(p) if isinstance(p, str) else p for p in params),
            inputs=tuple(inputs),
            log_fn=log_fn,
            positive_inputs=None if positive_inputs is None else tuple(positive_inputs),
            equation=equation,
            reference=reference,
        )

    return wrap

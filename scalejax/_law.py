"""Laws: pure JAX functions of named parameters and named inputs.

A `Law` holds the prediction function, its parameters (`Param`: bounds that
pick a transform to an unconstrained space, and a grid of starting values)
and the names of its inputs. Solvers work on the unconstrained vector; laws
see natural parameter values in a dict.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import LawError

__all__ = ["Law", "Param", "law", "log_sum_exp"]


@dataclasses.dataclass(frozen=True)
class Param:
    """One named parameter of a law.

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
        prior: a NumPyro distribution on the natural scale used by
            `scalejax.posterior`, or None for the default derived from the
            bounds and the grid (see `scalejax.bayes.default_prior`).
    """

    name: str
    lower: float | None = None
    upper: float | None = None
    grid: tuple[float, ...] = ()
    doc: str = ""
    prior: object = None

    def __post_init__(self):
        if not self.name.isidentifier():
            raise LawError(f"parameter name {self.name!r} must be a Python identifier")
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise LawError(f"parameter {self.name!r}: lower {self.lower} must be below upper {self.upper}")
        object.__setattr__(self, "grid", tuple(float(v) for v in np.atleast_1d(self.grid)))
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

    def contains(self, value: float) -> bool:
        """Whether `value` lies strictly inside the bounds."""
        return (self.lower is None or value > self.lower) and (self.upper is None or value < self.upper)

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

    def forward(self, u, xp=jnp):
        """Unconstrained value -> natural value (JAX arrays; NumPy ones with `xp=numpy`)."""
        match self.transform:
            case "identity":
                return u
            case "lower":
                return self.lower + xp.exp(u)
            case "upper":
                return self.upper - xp.exp(u)
            case _:
                return self.lower + (self.upper - self.lower) * 0.5 * (xp.tanh(0.5 * u) + 1.0)

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


@dataclasses.dataclass(frozen=True, eq=False)
class Law:
    """A scaling law: `fn(params, inputs) -> y` with named parameters and inputs.

    Laws are compared and hashed by identity, so one `Law` object reuses its
    compiled solvers.

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
            powers of). Defaults to all inputs.
        equation: the law as text, for tables and reports.
        reference: the paper it comes from.
    """

    name: str
    fn: Callable
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    log_fn: Callable | None = None
    positive_inputs: tuple[str, ...] | None = None
    equation: str = ""
    reference: str = ""

    def __post_init__(self):
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not self.params:
            raise LawError(f"law {self.name!r} declares no parameters")
        if not self.inputs:
            raise LawError(f"law {self.name!r} declares no inputs")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise LawError(f"law {self.name!r} repeats a parameter name: {names}")
        if self.positive_inputs is None:
            object.__setattr__(self, "positive_inputs", self.inputs)
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

    def unpack(self, u, xp=jnp) -> dict:
        """Unconstrained vector(s) `(..., n_params)` -> dict of natural values (NumPy with `xp=numpy`)."""
        return {p.name: p.forward(u[..., i], xp=xp) for i, p in enumerate(self.params)}

    def natural(self, u) -> dict[str, np.ndarray]:
        """`unpack` in NumPy, float64: for results on the host (no compilation)."""
        u = np.asarray(u, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged lane is inf, as in JAX
            return {k: np.asarray(v, dtype=np.float64) for k, v in self.unpack(u, xp=np).items()}

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

    def predict(self, params: Mapping, x: Mapping):
        """Prediction on the natural scale."""
        if self.log_fn is not None:
            return jnp.exp(self.log_fn(params, x))
        return self.fn(params, x)

    def log_predict(self, params: Mapping, x: Mapping, *, positive_inputs: bool = False):
        """Prediction on the log scale (NaN where the law predicts y <= 0).

        With `positive_inputs=True` (validated data, as the solvers have) the
        law's powers of its positive inputs are computed as `exp(y log x)`.
        """
        if self.log_fn is not None:
            return self.log_fn(params, x)
        y = (_powers_of_positive_inputs(self.fn, self.positive_inputs) if positive_inputs else self.fn)(params, x)
        return jnp.where(y > 0, jnp.log(jnp.where(y > 0, y, 1.0)), jnp.nan)

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

"""constrain(): a law with some parameters fixed to values and others tied equal, as a law of the rest.

Fitting, bootstrapping and sampling a posterior then need nothing new: they
see an ordinary `Law` whose parameters are the free ones. `expand` turns
the free values (a dict, arrays of draws, a samples table) back into the
full named set of the original law.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import numpy as np
import pandas as pd

from ._errors import LawError
from ._law import Law, Param, plain_method
from .laws import get as get_law

__all__ = ["ConstrainedLaw", "constrain", "expand"]


def _fill(fixed, tied, p: Mapping) -> dict:
    """The base law's parameters from the free ones: fixed values broadcast like the free values."""
    out = dict(p)
    like = next(iter(p.values()))
    for name, value in fixed:
        # Scalars stay Python floats under JAX (a weak type: no float32/float64 promotion surprise).
        out[name] = value if np.ndim(like) == 0 else np.full(np.shape(like), value)
    for leader, *followers in tied:
        for name in followers:
            out[name] = p[leader]
    return out


class ConstrainedLaw(Law):
    """A law whose parameters are the free ones of `base`; the others are fixed or tied.

    Built by `constrain`. Its inputs, positive inputs and input encoding (the
    group labels of a joint law) are the base law's. Compared by value: two
    laws constrained the same way are equal and share compiled code.

    Attributes:
        base: the law with every parameter.
        fixed: `(name, value)` pairs, in the base law's order.
        tied: groups of base parameter names that share one value; the first
            of each group is the free parameter that carries it.
    """

    base: Law = eqx.field(static=True, default=None)
    fixed: tuple[tuple[str, float], ...] = eqx.field(static=True, default=())
    tied: tuple[tuple[str, ...], ...] = eqx.field(static=True, default=())

    def __repr__(self) -> str:
        return f"ConstrainedLaw({self.name!r}, inputs={self.inputs}, params={self.param_names})"

    @plain_method
    def full_params(self, p: Mapping) -> dict:
        """The base law's parameters from the free ones (fixed values broadcast like the free values)."""
        return _fill(self.fixed, self.tied, p)

    @plain_method
    def evaluate(self, params, x):
        """The base law at the free parameters with the fixed and tied ones filled in."""
        return self.base.evaluate(self.full_params(params), x)

    @plain_method
    def log_form(self):
        return None if self.base.log_form() is None else self._log_evaluate

    @plain_method
    def _log_evaluate(self, params, x):
        return self.base.log_form()(self.full_params(params), x)

    @property
    def fixed_values(self) -> dict[str, float]:
        """Fixed parameter name -> value."""
        return dict(self.fixed)

    @plain_method
    def roles(self) -> dict[str, str]:
        """Each base parameter's role, in the base law's order: `"free"`, `"fixed"` or `"tied to <name>"`."""
        roles = {}
        followers = {name: group[0] for group in self.tied for name in group[1:]}
        for name in self.base.param_names:
            if name in self.fixed_values:
                roles[name] = "fixed"
            elif name in followers:
                roles[name] = f"tied to {followers[name]}"
            else:
                roles[name] = "free"
        return roles

    @plain_method
    def free(self, values):
        """Base-law values (a dict, a DataFrame, or an array `(..., n_base)` in the base law's order) -> the free ones.

        Handy for starts written for the full law; values that are already
        the free ones (a dict of them, an array `(..., n_free)`) pass through.
        """
        if isinstance(values, pd.DataFrame):
            return values[[k for k in self.param_names if k in values.columns]]
        if isinstance(values, Mapping):  # a missing free parameter is left for the caller to report
            return {k: values[k] for k in self.param_names if k in values}
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape[-1] == self.n_params:  # already the free parameters
            return arr
        if arr.shape[-1] != self.base.n_params:
            raise LawError(
                f"law {self.base.name!r} has {self.base.n_params} parameters ({self.n_params} free), "
                f"got {arr.shape[-1]} values"
            )
        index = [self.base.param_names.index(k) for k in self.param_names]
        return arr[..., index]

    @plain_method
    def encode_input(self, name, values, *, column=None, row_name="row"):
        return self.base.encode_input(name, values, column=column, row_name=row_name)

    @plain_method
    def start_grid(self) -> np.ndarray:
        """The base law's start grid with fixed columns dropped and tied ones merged (duplicates removed)."""
        natural = self.base.natural(self.base.start_grid())
        rows = np.stack([np.asarray(natural[k], dtype=np.float64) for k in self.param_names], axis=-1)
        inside = np.all([np.vectorize(p.contains)(rows[:, i]) for i, p in enumerate(self.params)], axis=0)
        rows = np.unique(rows[inside], axis=0)
        if rows.shape[0] == 0:  # every grid point fell outside a tied parameter's narrower range
            return Law.start_grid(self)
        return self.pack(rows)

    @property
    def n_starts(self) -> int:
        return int(self.start_grid().shape[0])


def constrain(
    law: str | Law,
    *,
    fixed: Mapping[str, float] | None = None,
    tied: Sequence[Sequence[str]] = (),
) -> Law:
    """The law with `fixed` parameters set to values and each `tied` group sharing one value.

    The result is a `Law` of the remaining free parameters, so `sj.fit`,
    `sj.bootstrap` and `sj.posterior` fit it unchanged; `expand` maps its
    values back to every parameter of `law`. Two calls with the same
    arguments return equal laws (the same object), which reuse compiled solvers.

    Args:
        law: a `Law` or the name of a built-in one.
        fixed: parameter name -> value. A value may sit on a closed bound of
            the parameter's range (`E = 0` for a law with `E > 0`) but not
            outside it.
        tied: groups of parameter names, e.g. `[("alpha", "beta")]`: all
            members of a group share the value of the first, which stays
            free under its name. Its range is the intersection of the
            members' ranges.

    Returns:
        A `ConstrainedLaw` (the law itself when nothing is fixed or tied).

    Example:
        >>> import scalejax as sj
        >>> law = sj.constrain("chinchilla", fixed={"E": 1.69}, tied=[("alpha", "beta")])
        >>> law.param_names
        ('A', 'B', 'alpha')
        >>> sj.expand(law, {"A": 406.4, "B": 410.7, "alpha": 0.34})
        {'E': 1.69, 'A': 406.4, 'B': 410.7, 'alpha': 0.34, 'beta': 0.34}

    References:
        Gadre et al. 2024 tie Chinchilla's alpha = beta; Bhagia et al. 2024 and
        lmfit (`vary=False`) fix parameters.
    """
    base = get_law(law)
    fixed = dict(fixed or {})
    spec_fixed = _check_fixed(base, fixed)
    spec_tied = _check_tied(base, tied, spec_fixed)
    if not spec_fixed and not spec_tied:
        return base
    return _build(base, spec_fixed, spec_tied)


def _build(base: Law, fixed: tuple, tied: tuple) -> ConstrainedLaw:
    gone = {name for name, _ in fixed} | {name for group in tied for name in group[1:]}
    params = []
    for p in base.params:
        if p.name in gone:
            continue
        group = next((g for g in tied if g[0] == p.name), None)
        params.append(p if group is None else _merged(base, group))
    if not params:
        raise LawError(f"law {base.name!r}: fixing and tying leaves no parameter to fit")
    notes = [f"{k} = {v:g}" for k, v in fixed] + [f"{' = '.join(g)}" for g in tied]
    return ConstrainedLaw(
        name=f"{base.name}[{', '.join(notes)}]",
        fn=base.fn,
        log_fn=base.log_fn,
        params=tuple(params),
        inputs=base.inputs,
        positive_inputs=base.positive_inputs,
        equation=f"{base.equation}; with {', '.join(notes)}",
        reference=base.reference,
        base=base,
        fixed=fixed,
        tied=tied,
    )


def _merged(base: Law, group: tuple[str, ...]) -> Param:
    """The free parameter of a tied group: the leader, limited to the intersection of the members' ranges."""
    members = [base.params[base.param_names.index(k)] for k in group]
    lowers = [p.lower for p in members if p.lower is not None]
    uppers = [p.upper for p in members if p.upper is not None]
    lower, upper = (max(lowers) if lowers else None), (min(uppers) if uppers else None)
    if lower is not None and upper is not None and not lower < upper:
        raise LawError(f"tied parameters {list(group)} have disjoint ranges; they cannot share a value")
    grid = sorted({v for p in members for v in p.grid if _inside(v, lower, upper)})
    leader = members[0]
    return Param(leader.name, lower, upper, tuple(grid), f"{leader.doc} (= {', '.join(group[1:])})", leader.prior)


def _inside(v, lower, upper) -> bool:
    return (lower is None or v > lower) and (upper is None or v < upper)


def _check_fixed(base: Law, fixed: dict) -> tuple[tuple[str, float], ...]:
    unknown = [k for k in fixed if k not in base.param_names]
    if unknown:
        raise LawError(f"fixed parameters {unknown} are not parameters of law {base.name!r} {list(base.param_names)}")
    out = []
    for p in base.params:
        if p.name not in fixed:
            continue
        try:
            value = float(fixed[p.name])
        except (TypeError, ValueError):
            raise LawError(f"fixed value of {p.name!r} must be a number, got {fixed[p.name]!r}") from None
        if not math.isfinite(value):
            raise LawError(f"fixed value of {p.name!r} must be finite, got {value}")
        if (p.lower is not None and value < p.lower) or (p.upper is not None and value > p.upper):
            raise LawError(
                f"fixed value {p.name} = {value:g} lies outside the parameter's range ({p.lower}, {p.upper}) "
                f"in law {base.name!r}"
            )
        out.append((p.name, value))
    return tuple(out)


def _check_tied(base: Law, tied, fixed) -> tuple[tuple[str, ...], ...]:
    if isinstance(tied, str) or (tied and isinstance(tied[0], str)):
        raise LawError(f"tied must be a list of groups of names, e.g. tied=[('alpha', 'beta')], got {tied!r}")
    groups, seen = [], set()
    fixed_names = {name for name, _ in fixed}
    for group in tied:
        group = tuple(group)
        if len(group) < 2:
            raise LawError(f"a tied group needs at least two parameter names, got {list(group)}")
        unknown = [k for k in group if k not in base.param_names]
        if unknown:
            raise LawError(
                f"tied parameters {unknown} are not parameters of law {base.name!r} {list(base.param_names)}"
            )
        clash = [k for k in group if k in fixed_names]
        if clash:
            raise LawError(f"parameters {clash} are both fixed and tied; fix every member of the group instead")
        repeated = [k for k in group if k in seen] + [k for k in set(group) if group.count(k) > 1]
        if repeated:
            raise LawError(f"parameters {sorted(set(repeated))} appear in more than one tied group; merge those groups")
        seen.update(group)
        groups.append(group)
    return tuple(groups)


def expand(law: Law, values):
    """Free parameter values of a constrained law -> every parameter of the original law.

    Args:
        law: a law from `constrain` (any other law passes `values` through).
        values: the free parameters as a dict of floats or arrays (e.g. one
            array per parameter with a leading draw axis), or a DataFrame with
            one column per free parameter (e.g. `draws.samples`).

    Returns:
        The same kind as `values`, with every parameter of the original law in
        its order: fixed ones at their values, tied ones equal to their leader.
    """
    if not isinstance(law, ConstrainedLaw):
        return values
    if isinstance(values, pd.DataFrame):
        cols = {k: values[k].to_numpy(dtype=np.float64) for k in law.param_names}
        full = expand(law, cols)
        return pd.DataFrame(full, index=values.index)
    missing = [k for k in law.param_names if k not in values]
    if missing:
        raise LawError(f"law {law.name!r} needs values for its free parameters {missing}")
    free = {k: values[k] for k in law.param_names}
    full = _fill(law.fixed, law.tied, free)
    if all(np.ndim(v) == 0 for v in free.values()):
        full = {k: float(v) for k, v in full.items()}
    ordered = {k: full[k] for k in law.base.param_names}
    return expand(law.base, ordered)

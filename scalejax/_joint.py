"""joint(): one law fitted across groups at once, some parameters shared and the rest one copy per group.

The joint law is an ordinary `Law` (so `fit`, `bootstrap` and every analysis
of draws work unchanged) with one more input, `group`, holding each point's
group label; the labels are mapped to integer codes when the data are read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ._errors import DataError, LawError, describe_rows
from ._law import Law, Param, plain_method
from .laws._registry import get as get_law

__all__ = ["JointLaw", "joint"]

GROUP_INPUT = "group"


class JointLaw(Law):
    """A law fitted across groups: `shared` parameters common to all, the others copied per group.

    Per-group copies are named `<param>_<group>` (the group label made a
    Python identifier). Built by `joint`; see there. Compared by value: two
    joint laws built from the same base, groups and shared parameters are
    equal and share compiled code.

    Attributes:
        base: the law every group follows.
        groups: the group labels, in code order.
        shared: the names of the parameters common to all groups.
        tags: the identifier-safe suffix of each group's copies.
        origin: the base parameter each joint parameter copies, in order.
    """

    base: Law = eqx.field(static=True, default=None)
    groups: tuple = eqx.field(static=True, default=())
    shared: tuple[str, ...] = eqx.field(static=True, default=())
    tags: tuple[str, ...] = eqx.field(static=True, default=())
    origin: tuple[str, ...] = eqx.field(static=True, default=())

    @plain_method
    def _base_params(self, p, x):
        code = x[GROUP_INPUT].astype(jnp.int32)
        out = {}
        for k in self.base.param_names:
            if k in self.shared:
                out[k] = p[k]
            else:
                out[k] = jnp.stack([p[f"{k}_{t}"] for t in self.tags])[code]
        return out, {k: v for k, v in x.items() if k != GROUP_INPUT}

    @plain_method
    def evaluate(self, params, x):
        """The base law evaluated at each point with its group's parameters."""
        q, xb = self._base_params(params, x)
        return self.base.evaluate(q, xb)

    @plain_method
    def log_form(self):
        return None if self.base.log_form() is None else self._log_evaluate

    @plain_method
    def _log_evaluate(self, params, x):
        q, xb = self._base_params(params, x)
        return self.base.log_form()(q, xb)

    @plain_method
    def group_indices(self, group) -> list[int]:
        """Positions of the joint parameters that give `group` its base parameters, in the base's order."""
        names = list(self.param_names)
        return [names.index(self.param_name(k, group)) for k in self.base.param_names]

    @plain_method
    def param_name(self, name: str, group) -> str:
        """The joint parameter holding `name` for `group` (`name` itself when shared)."""
        if name in self.shared:
            return name
        return f"{name}_{self.tags[self._code(group)]}"

    @plain_method
    def _code(self, group) -> int:
        for i, g in enumerate(self.groups):
            if g == group or str(g) == str(group):
                return i
        raise LawError(f"unknown group {group!r}; the joint law has groups {list(self.groups)}")

    @plain_method
    def group_params(self, params) -> pd.DataFrame:
        """Natural parameters (a dict, e.g. `fit.params`) -> one row per group, one column per base parameter."""
        rows = {g: {k: float(params[self.param_name(k, g)]) for k in self.base.param_names} for g in self.groups}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis(GROUP_INPUT)

    @plain_method
    def encode_input(self, name, values, *, column=None, row_name="row"):
        """Group labels -> integer codes (other inputs pass through)."""
        if name != GROUP_INPUT:
            return values
        series = values if isinstance(values, pd.Series) else pd.Series(np.atleast_1d(np.asarray(values, dtype=object)))
        lookup = {str(g): i for i, g in enumerate(self.groups)}
        codes = series.map(lambda v: lookup.get(str(v), -1)).astype(np.float64)
        unknown = codes.to_numpy() < 0
        if unknown.any():
            where = describe_rows(series.index[unknown], row_name=row_name)
            seen = ", ".join(repr(v) for v in pd.unique(series[unknown])[:3])
            raise DataError(
                f"column {column!r} (for the group input) has labels not among the joint law's groups "
                f"({where}: {seen}); the groups are {list(self.groups)}: add them to joint(..., groups=[...]) "
                "or remove those rows"
            )
        return codes

    @plain_method
    def start_grid(self) -> np.ndarray:
        """The base law's grid, each per-group copy starting where its base parameter does: `(S, n_params)`."""
        natural = self.base.unpack(self.base.start_grid())
        return self.pack(np.stack([np.asarray(natural[k]) for k in self.origin], axis=-1))

    @property
    def n_starts(self) -> int:
        return self.base.n_starts


def _tags(groups: Sequence) -> tuple[str, ...]:
    tags = [re.sub(r"\W", "_", str(g)) for g in groups]
    tags = [t if t and not t[0].isdigit() else f"g{t}" for t in tags]
    if len(set(tags)) != len(tags):
        tags = [f"g{i}" for i in range(len(groups))]
    return tuple(tags)


def joint(law: str | Law, groups: Sequence, shared: Sequence[str] = ()) -> JointLaw:
    """One law across groups: `shared` parameters common to every group, the others one copy per group.

    All groups are fitted together as one problem (one objective, summed over
    every group's points), so a shared exponent is estimated from all the data.
    The joint law takes the base law's inputs plus `group`, a column of group
    labels: map it like any input, `x={..., "group": "dataset"}`.

    Args:
        law: the base `Law` or a built-in law's name.
        groups: the group labels (each point's label must be one of them).
        shared: names of the base law's parameters common to all groups.

    Returns:
        A `JointLaw`; per-group parameters are named `<param>_<group>`.

    Example:
        >>> import scalejax as sj
        >>> law = sj.joint("power", groups=["c4", "pile"], shared=["alpha"])
        >>> law.param_names
        ('E_c4', 'E_pile', 'A_c4', 'A_pile', 'alpha')
    """
    base = get_law(law)
    groups = tuple(groups)
    shared = tuple(shared)
    if len(groups) < 1:
        raise LawError("joint() needs at least one group label")
    if len({str(g) for g in groups}) != len(groups):
        raise LawError(f"joint() group labels repeat: {list(groups)}")
    unknown = [k for k in shared if k not in base.param_names]
    if unknown:
        raise LawError(f"shared parameters {unknown} are not parameters of law {base.name!r} {list(base.param_names)}")
    if GROUP_INPUT in base.inputs:
        raise LawError(f"law {base.name!r} already has an input named {GROUP_INPUT!r}; rename it to use joint()")
    tags = _tags(groups)
    params: list[Param] = []
    origin: list[str] = []
    for p in base.params:
        copies = (
            [p]
            if p.name in shared
            else [p.renamed(f"{p.name}_{t}", doc=f"{p.doc} ({g})") for g, t in zip(groups, tags, strict=True)]
        )
        params.extend(copies)
        origin.extend([p.name] * len(copies))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise LawError(f"joint() parameter names collide: {names}; rename the groups")
    return JointLaw(
        name=f"{base.name}[joint]",
        fn=base.fn,
        log_fn=base.log_fn,
        params=tuple(params),
        inputs=(*base.inputs, GROUP_INPUT),
        positive_inputs=base.positive_inputs,
        equation=f"{base.equation} per group; shared: {', '.join(shared) or 'none'}",
        reference=base.reference,
        base=base,
        groups=groups,
        shared=shared,
        tags=tags,
        origin=tuple(origin),
    )

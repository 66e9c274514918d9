"""Draws: the one thing every estimate is, a batch of parameter sets with a leading sample axis.

A point fit is a batch of one, a bootstrap a batch of resample fits, a
posterior a batch of MCMC draws. Analyses are written for one parameter set
and `vmap`-ed over the draws by `Draws.map`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ._errors import DataError
from ._law import Law

__all__ = ["Draws", "law_inputs"]


class Draws:
    """A batch of parameter sets of one law.

    Attributes:
        law: the `Law`.
        u: `(S, n_params)` unconstrained parameters, one row per draw.
        columns: law input name -> source column, used to read new inputs.
    """

    def __init__(self, law: Law, u: np.ndarray, *, columns: Mapping[str, str] | None = None):
        self.law = law
        self.u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        self.columns = dict(columns or {})

    @property
    def n_draws(self) -> int:
        return self.u.shape[0]

    @property
    def samples(self) -> pd.DataFrame:
        """One row per draw, one column per parameter (natural scale)."""
        return pd.DataFrame(self.law.natural(self.u))

    @property
    def center(self) -> dict[str, float]:
        """The central estimate (natural scale): the draws' median here.

        A `Fit` returns its optimum and a `Bootstrap` its full-data fit;
        analyses report this value beside their intervals.
        """
        return {k: float(v) for k, v in self.samples.median().items()}

    @property
    def center_u(self) -> np.ndarray:
        """The central estimate as an unconstrained vector `(n_params,)`."""
        return self.law.pack(self.center)

    def interval(self, level: float = 0.95) -> pd.DataFrame:
        """Equal-tailed percentile interval of each parameter: columns `lo`, `hi`."""
        lo_q, hi_q = _tails(level)
        samples = self.samples
        return pd.DataFrame({"lo": samples.quantile(lo_q), "hi": samples.quantile(hi_q)}).rename_axis("param")

    def map(self, fn: Callable[[dict], object]):
        """Apply `fn(params_dict)`, written for one parameter set, to every draw (vmapped).

        Returns the outputs stacked along a leading draw axis, as NumPy arrays.
        """
        with jax.enable_x64(True):
            out = jax.jit(jax.vmap(lambda u: fn(self.law.unpack(u))))(jnp.asarray(self.u))
            return jax.tree.map(lambda a: np.asarray(a), out)

    def predict_draws(self, new) -> np.ndarray:
        """Predicted y at the rows of `new` for every draw: `(S, m)`."""
        x = law_inputs(self.law, new, self.columns)
        with jax.enable_x64(True):
            xj = {k: jnp.asarray(v) for k, v in x.items()}
            return np.asarray(_predict_compiled(self.law, jnp.asarray(self.u), xj))


@functools.partial(jax.jit, static_argnums=0)
def _predict_compiled(law, u, x):
    return jax.vmap(lambda row: law.predict(law.unpack(row), x))(u)


def law_inputs(law: Law, new, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Read a law's inputs from a DataFrame or dict, by input name or by the fit's column names."""
    if isinstance(new, pd.DataFrame):
        keys = set(new.columns)
    elif isinstance(new, Mapping):
        keys = set(new)
    else:
        raise DataError(f"new inputs must be a DataFrame or a dict of arrays, got {type(new).__name__}")
    out = {}
    for name in law.inputs:
        column = name if name in keys else columns.get(name)
        if column not in keys:
            raise DataError(
                f"new inputs lack {name!r}"
                + (f" (or column {columns[name]!r})" if name in columns else "")
                + f"; law {law.name!r} needs {', '.join(law.inputs)}"
            )
        values = np.atleast_1d(np.asarray(law.encode_input(name, new[column], column=column), dtype=np.float64))
        if not np.all(np.isfinite(values)):
            raise DataError(f"new input {name!r} has missing or infinite values")
        if name in law.positive_inputs and np.any(values <= 0):
            raise DataError(f"new input {name!r} has non-positive values; law {law.name!r} needs {name} > 0")
        out[name] = values
    return dict(zip(out, np.broadcast_arrays(*out.values()), strict=True))


def _tails(level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    return (1 - level) / 2, 1 - (1 - level) / 2

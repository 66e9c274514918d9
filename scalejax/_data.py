"""Data: a validated table of runs mapped onto a law's inputs, as float64 arrays.

Every problem is reported once, naming the column, the rows and the fix;
nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._errors import DataError, describe_rows

__all__ = ["Data", "DataWarning", "as_table"]


def as_table(table):
    """Any table of runs as a pandas DataFrame; dicts (and None) pass through unchanged.

    Accepted: pandas DataFrames; any eager DataFrame narwhals reads (polars,
    pyarrow Tables, modin, cuDF, ...); anything that implements the DataFrame
    interchange protocol (`__dataframe__`); xarray Datasets (one row per point
    of their dimensions, the dimension coordinates as the index). A pandas
    DataFrame keeps its index (row labels in messages and predictions); other
    tables are numbered 0..n-1, as they are in their own libraries.

    narwhals carries the conversion: it has no dependencies, is kept by the
    authors of the libraries it reads (Altair, Plotly and Bokeh rely on it),
    and reads each column to NumPy directly, where `polars.DataFrame.to_pandas`
    would need pyarrow and the interchange protocol is being retired by pandas
    and polars in favour of Arrow's. polars, pyarrow and xarray themselves stay
    optional: none of them is imported unless the caller passes one of their
    tables.
    """
    if hasattr(table, "data_vars") and hasattr(table, "to_dataframe"):  # an xarray Dataset (also a Mapping)
        return table.to_dataframe()
    if table is None or isinstance(table, pd.DataFrame | Mapping):
        return table
    import narwhals as nw

    try:
        frame = nw.from_native(table, eager_only=True)
    except TypeError:
        frame = None
    if frame is not None:
        return pd.DataFrame({name: frame[name].to_numpy() for name in frame.columns})
    if hasattr(table, "__dataframe__"):
        return pd.api.interchange.from_dataframe(table)
    return table


class DataWarning(UserWarning):
    """The data can be used but looks suspicious (duplicated runs...)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Data:
    """Validated inputs and targets of a fit.

    Attributes:
        x: law input name -> float64 array of the points.
        y: float64 targets.
        weights: float64 per-point weights (1 by default).
        groups: group label per point, or None.
        index: the row labels of the source table, for messages and tables.
        columns: law input name -> source column name (`"y"`, `"weights"`,
            `"group"` keys for the others).
        sizes: the runs' model size and tokens, `"N"` and `"D"` -> float64 arrays,
            from the source table's columns of those names when they are not
            inputs of the law (positive where given, NaN where missing, as on
            an anchor row; left out if a value is not positive). A law of
            something else (accuracy from task loss, fitted to a ladder's
            checkpoints) can then still order its runs by compute, as a chained
            forecast's calibration does (`scalejax.analysis.chain_predict`).
    """

    x: dict[str, np.ndarray]
    y: np.ndarray
    weights: np.ndarray
    groups: np.ndarray | None = None
    index: pd.Index | None = None
    columns: dict[str, object] = dataclasses.field(default_factory=dict)
    sizes: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def __eq__(self, other) -> bool:
        """The same points, targets, weights, groups, row labels, columns and sizes."""
        if not isinstance(other, Data):
            return NotImplemented
        if set(self.x) != set(other.x) or self.columns != other.columns or set(self.sizes) != set(other.sizes):
            return False
        arrays = [(self.x[k], other.x[k]) for k in self.x] + [(self.y, other.y), (self.weights, other.weights)]
        arrays += [(self.sizes[k], other.sizes[k]) for k in self.sizes]
        if not all(a.shape == b.shape and np.array_equal(a, b, equal_nan=True) for a, b in arrays):
            return False
        for a, b in ((self.groups, other.groups), (self.index, other.index)):
            if (a is None) != (b is None):
                return False
            if a is not None and not (len(a) == len(b) and all(str(u) == str(v) for u, v in zip(a, b, strict=True))):
                return False
        if (self.index is not None) and self.index.name != other.index.name:
            return False
        return True

    __hash__ = None  # arrays inside

    def replace(self, **changes) -> Data:
        """A copy with some fields changed (e.g. `weights`)."""
        return dataclasses.replace(self, **changes)

    def target(self, log_scale: bool) -> np.ndarray:
        return np.log(self.y) if log_scale else self.y

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame | Mapping,
        *,
        x: Mapping[str, str],
        y: str,
        weights: str | None = None,
        group: str | None = None,
        law=None,
        positive_y: bool = True,
        row_name: str = "row",
    ) -> Data:
        """Map and validate columns of `frame`.

        Args:
            frame: the runs, one per row: a pandas, polars or pyarrow table, any
                DataFrame narwhals or the interchange protocol reads, an xarray
                Dataset, or a dict of columns (see `as_table`).
            x: law input name -> column (`{"N": "params", "D": "tokens"}`).
            y: the column to fit (loss, error...).
            weights: optional column of non-negative per-point weights.
            group: optional column labelling groups (runs, model sizes, tasks).
            law: if given, `x` must map exactly its inputs, its positive
                inputs must be > 0, and there must be at least as many rows
                as parameters.
            positive_y: require y > 0 (fits on the log scale).
            row_name: how messages name a row (`"row"`, or `"line"` for CSV lines).
        """
        frame = as_table(frame)
        if not isinstance(frame, pd.DataFrame):
            try:
                frame = pd.DataFrame(frame)
            except (TypeError, ValueError) as err:
                raise DataError(f"cannot read the data as a table: {err}") from None
        if frame.shape[0] == 0:
            raise DataError("the table has no rows")
        if not isinstance(x, Mapping) or not x:
            raise DataError("x must map each law input to a column, e.g. x={'N': 'params', 'D': 'tokens'}")
        if law is not None:
            missing = [name for name in law.inputs if name not in x]
            extra = [name for name in x if name not in law.inputs]
            if missing or extra:
                mapping = ", ".join(f"{name!r}: ..." for name in law.inputs)
                raise DataError(
                    f"law {law.name!r} takes inputs {', '.join(law.inputs)}"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; not inputs of the law: {', '.join(extra)}" if extra else "")
                    + f"; map them with x={{{mapping}}}"
                )
        named = {**{f"x[{k!r}]": v for k, v in x.items()}, "y": y}
        if weights is not None:
            named["weights"] = weights
        if group is not None:
            named["group"] = group
        for role, column in named.items():
            if column not in frame.columns:
                have = ", ".join(repr(str(c)) for c in frame.columns)
                raise DataError(f"column {column!r} (for {role}) not found; the table has columns {have}")
        if frame.columns.duplicated().any():
            dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
            used = [c for c in dup if c in {str(v) for v in named.values()}]
            if used:
                raise DataError(f"column name {used[0]!r} appears more than once; rename the columns so each is unique")

        positive = set(law.positive_inputs) if law is not None else set(x)
        labels = frame.index
        xs = {
            name: _numeric(
                frame[column]
                if law is None
                else law.encode_input(name, frame[column], column=column, row_name=row_name),
                column,
                labels,
                row_name,
                positive=name in positive,
                why=f"it is input {name}",
            )
            for name, column in x.items()
        }
        ys = _numeric(frame[y], y, labels, row_name, positive=positive_y, why="the fit is on the log scale")
        if weights is None:
            ws = np.ones_like(ys)
        else:
            ws = _numeric(frame[weights], weights, labels, row_name, positive=False, why="")
            negative = np.flatnonzero(ws < 0)
            if negative.size:
                raise DataError(
                    f"column {weights!r} has {negative.size} negative weights ({describe_rows(labels[negative], row_name=row_name)}); weights must be >= 0"
                )
            if not np.any(ws > 0):
                raise DataError(f"column {weights!r} has no positive weight; at least some points must count")
        groups = None
        if group is not None:
            missing_group = frame[group].isna().to_numpy()
            if missing_group.any():
                rows = describe_rows(labels[missing_group], row_name=row_name)
                raise DataError(
                    f"column {group!r} has {missing_group.sum()} missing group labels ({rows}); fill or remove them"
                )
            groups = frame[group].to_numpy()

        data = cls(
            x=xs,
            y=ys,
            weights=ws,
            groups=groups,
            index=labels,
            columns={**dict(x), "y": y}
            | ({"weights": weights} if weights is not None else {})
            | ({"group": group} if group is not None else {}),
            sizes=_sizes(frame, x),
        )
        data._warn_duplicates(row_name)
        if law is not None:
            data.check_size(law)
        return data

    @classmethod
    def from_arrays(
        cls, x: Mapping[str, object], y, *, weights=None, groups=None, law=None, positive_y: bool = True
    ) -> Data:
        """The same validation for arrays: `x` maps law input names to arrays."""
        frame = {f"{k}": np.asarray(v).ravel() for k, v in x.items()}
        # Messages name the target, weights and groups by these names, unless an input already has one.
        names = {role: role if role not in frame else f"__{role}" for role in ("y", "weights", "group")}
        extra = (
            {"y": y}
            | ({"weights": weights} if weights is not None else {})
            | ({"group": groups} if groups is not None else {})
        )
        lengths = {k: len(v) for k, v in frame.items()}
        for role, values in extra.items():
            values = np.asarray(values)
            if role == "weights" and values.ndim == 0:
                values = np.broadcast_to(values, (np.asarray(y).size,))
            frame[names[role]] = values.ravel()
            lengths[role] = values.size
        if len(set(lengths.values())) > 1:
            raise DataError(f"inputs and y have different lengths: {lengths}; give one value per point in each")
        return cls.from_frame(
            pd.DataFrame(frame),
            x={k: k for k in x},
            y=names["y"],
            weights=names["weights"] if weights is not None else None,
            group=names["group"] if groups is not None else None,
            law=law,
            positive_y=positive_y,
        )

    def check_size(self, law) -> None:
        live = int(np.sum(self.weights > 0))
        if live < law.n_params:
            raise DataError(
                f"only {live} weighted points for the {law.n_params} parameters of law {law.name!r}; "
                f"a fit needs at least {law.n_params} points, and many more to be trusted"
            )

    def _warn_duplicates(self, row_name: str) -> None:
        # Rows of different groups (tasks, data sets) are different runs even with equal values.
        groups = {} if self.groups is None else {"__group": self.groups}
        table = pd.DataFrame({**self.x, "__y": self.y, **groups})
        dup = table.duplicated(keep=False).to_numpy()
        if dup.any():
            warnings.warn(
                f"{dup.sum()} rows repeat the same inputs and y ({describe_rows(self.index[dup], row_name=row_name)}); "
                "each copy counts as a separate run",
                DataWarning,
                stacklevel=3,
            )


# Columns kept beside a law's inputs: what `by="compute"` reads (C = k N D).
SIZE_COLUMNS = ("N", "D")


def _sizes(frame: pd.DataFrame, x: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The table's `N` and `D` columns when they are not law inputs: numeric, positive where given.

    Missing values (an anchor row, which is no run) stay NaN; a column with a
    value that is not positive, or with no values, is not kept.
    """
    if set(SIZE_COLUMNS) & set(x) or not set(SIZE_COLUMNS) <= set(frame.columns):
        return {}
    if frame.columns.duplicated().any() and frame.columns[frame.columns.duplicated()].isin(SIZE_COLUMNS).any():
        return {}
    out = {}
    for name in SIZE_COLUMNS:
        series = frame[name]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            return {}
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        given = ~np.isnan(values)
        if not given.any() or not np.all(np.isfinite(values[given]) & (values[given] > 0)):
            return {}
        out[name] = values
    return out


def _numeric(series: pd.Series, column, labels, row_name: str, *, positive: bool, why: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        raise DataError(f"column {column!r} holds true/false values; it must hold numbers")
    if pd.api.types.is_complex_dtype(series) or (
        series.dtype == object and any(isinstance(v, complex | np.complexfloating) for v in series)
    ):
        raise DataError(f"column {column!r} holds complex numbers; it must hold real numbers")
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        examples = ", ".join(repr(v) for v in series[bad].astype(str).unique()[:3])
        raise DataError(
            f"column {column!r} has {bad.sum()} non-numeric values ({describe_rows(labels[bad], row_name=row_name)}: {examples}); "
            "it must hold numbers"
        )
    arr = values.to_numpy(dtype=np.float64)
    missing = ~np.isfinite(arr)
    if missing.any():
        raise DataError(
            f"column {column!r} has {missing.sum()} missing or infinite values "
            f"({describe_rows(labels[missing], row_name=row_name)}); remove or fill those rows"
        )
    if positive:
        nonpos = arr <= 0
        if nonpos.any():
            raise DataError(
                f"column {column!r} has {nonpos.sum()} non-positive values "
                f"({describe_rows(labels[nonpos], row_name=row_name)}); {why}, so it must be > 0"
            )
    return arr

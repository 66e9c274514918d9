"""Save and load results without pickle: one `.npz` file of plain arrays plus a JSON header.

The header (law name, parameter and input names, columns, result kind,
format version) is stored as a unicode array, so loading never needs
`allow_pickle`. A law that is not built in is not stored (it is code): pass
the same `Law` to `load`.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._bootstrap import Bootstrap
from ._data import Data
from ._draws import Draws
from ._errors import LawError, ScalejaxError
from ._fit import Fit
from ._law import Law
from ._objectives import Loss
from ._output import write_atomic
from .laws import available
from .laws import get as get_law
from .solvers import Solution

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "scalejax-result"
FORMAT_VERSION = 1


def save(result: Draws, path: str | os.PathLike) -> Path:
    """Save a `Fit`, a `Bootstrap` or plain `Draws` to one `.npz` file (no pickle), atomically.

    Args:
        result: the result to save.
        path: the file to write (conventionally ending in `.npz`; written as given).

    Returns:
        The path written.

    Example:
        >>> sj.save(fit, "fit.npz")
        >>> sj.load("fit.npz").params == fit.params
        True
    """
    arrays: dict[str, np.ndarray] = {}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "law": result.law.name if isinstance(result, Draws) else None,
    }
    if isinstance(result, Bootstrap):
        header["kind"] = "Bootstrap"
        header["fit"] = _put_fit(result.fit, arrays, "fit.")
        header["bootstrap"] = {"scheme": result.scheme, "n_resamples": int(result.n_resamples), "level": result.level}
        arrays["u"] = result.u
        arrays["objective"] = np.asarray(result.objective, dtype=np.float64)
        if result._jackknife_u is not None:
            arrays["jackknife_u"] = result._jackknife_u
    elif isinstance(result, Fit):
        header["kind"] = "Fit"
        header["fit"] = _put_fit(result, arrays, "")
    elif type(result) is Draws:
        header["kind"] = "Draws"
        arrays["u"] = result.u
    else:
        raise ScalejaxError(
            f"cannot save a {type(result).__name__}: scalejax.save takes a Fit, a Bootstrap or Draws; "
            "to keep the draws alone, save scalejax.Draws(result.law, result.u, columns=result.columns)"
        )
    header["params"] = list(result.law.param_names)
    header["inputs"] = list(result.law.inputs)
    header["columns"] = {str(k): _jsonable(v) for k, v in result.columns.items()}
    from . import __version__

    header["scalejax_version"] = __version__
    arrays["header"] = np.array(json.dumps(header))
    target = Path(path)
    if target.is_dir():
        raise ScalejaxError(f"{target}: is a directory; give a file name such as result.npz")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(target, buffer.getvalue())
    return target


def load(path: str | os.PathLike, *, law: Law | None = None) -> Draws:
    """Load a result written by `save`.

    Args:
        path: the `.npz` file.
        law: the `Law`, required when the result's law is not built in (it
            must have the same name, parameters and inputs).

    Returns:
        A `Fit`, a `Bootstrap` or `Draws`, as saved.

    Example:
        >>> boot = sj.load("boot.npz")
    """
    path = Path(path)
    if not path.is_file():
        raise ScalejaxError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise ScalejaxError(f"{path}: not a scalejax result file ({err})") from None
    try:
        header = json.loads(str(arrays.pop("header")))
    except (KeyError, json.JSONDecodeError):
        raise ScalejaxError(f"{path}: not a scalejax result file (no readable header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ScalejaxError(f"{path}: not a scalejax result file")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ScalejaxError(
            f"{path}: format version {version} is not supported by this scalejax (it reads version {FORMAT_VERSION}); "
            f"the file was written by scalejax {header.get('scalejax_version', '?')}, load it with that version"
        )
    law = _resolve_law(header, law, path)
    columns = header["columns"]
    kind = header.get("kind")
    if kind == "Draws":
        return Draws(law, arrays["u"], columns=columns)
    if kind == "Fit":
        return _get_fit(law, header["fit"], arrays, "", columns)
    if kind == "Bootstrap":
        fit_ = _get_fit(law, header["fit"], arrays, "fit.", columns)
        meta = header["bootstrap"]
        return Bootstrap(
            fit_,
            arrays["u"],
            arrays["objective"],
            scheme=meta["scheme"],
            n_resamples=int(meta["n_resamples"]),
            level=float(meta["level"]),
            jackknife_u=arrays.get("jackknife_u"),
        )
    raise ScalejaxError(f"{path}: unknown result kind {kind!r}")


def _resolve_law(header: dict, law: Law | None, path: Path) -> Law:
    name = header["law"]
    if law is None:
        if name not in available():
            raise LawError(
                f"{path}: the result is of law {name!r}, which is not built in; pass the same law: "
                f"scalejax.load({str(path)!r}, law=my_law)"
            )
        law = get_law(name)
    elif not isinstance(law, Law):
        raise LawError(f"law= must be a scalejax.Law, got {type(law).__name__}")
    if law.name != name or list(law.param_names) != header["params"] or list(law.inputs) != header["inputs"]:
        raise LawError(
            f"{path}: the result is of law {name!r} with parameters {header['params']} and inputs {header['inputs']}; "
            f"the law given is {law.name!r} with parameters {list(law.param_names)} and inputs {list(law.inputs)}"
        )
    return law


def _put_fit(fit_: Fit, arrays: dict, prefix: str) -> dict:
    data = fit_.data
    for name, values in data.x.items():
        arrays[f"{prefix}data.x.{name}"] = values
    arrays[f"{prefix}data.y"] = data.y
    arrays[f"{prefix}data.weights"] = data.weights
    if data.groups is not None:
        arrays[f"{prefix}data.groups"] = _plain(data.groups)
    if data.index is not None:
        arrays[f"{prefix}data.index"] = _plain(data.index.to_numpy())
    sol = fit_.solution
    for field in ("u", "objective", "status", "steps"):
        arrays[f"{prefix}solution.{field}"] = np.asarray(getattr(sol, field))
    return {
        "best": int(fit_.best),
        "loss": {"kind": fit_.loss.kind, "delta": float(fit_.loss.delta)},
        "data_columns": {str(k): _jsonable(v) for k, v in data.columns.items()},
        "index_name": _jsonable(data.index.name) if data.index is not None else None,
    }


def _get_fit(law: Law, meta: dict, arrays: dict, prefix: str, columns: dict) -> Fit:
    x = {name: arrays[f"{prefix}data.x.{name}"] for name in law.inputs}
    index = arrays.get(f"{prefix}data.index")
    data = Data(
        x=x,
        y=arrays[f"{prefix}data.y"],
        weights=arrays[f"{prefix}data.weights"],
        groups=arrays.get(f"{prefix}data.groups"),
        index=None if index is None else pd.Index(index, name=meta.get("index_name")),
        columns=dict(meta.get("data_columns", columns)),
    )
    solution = Solution(**{f: arrays[f"{prefix}solution.{f}"] for f in ("u", "objective", "status", "steps")})
    loss = Loss(meta["loss"]["kind"], float(meta["loss"]["delta"]))
    return Fit(law, data, loss, solution, int(meta["best"]))


def _plain(values) -> np.ndarray:
    """An array NumPy can store without pickle: numbers stay numbers, anything else becomes text."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biufUSM":
        return arr
    return arr.astype(str)


def _jsonable(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return str(value)

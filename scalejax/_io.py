"""Save and load results without pickle: one `.npz` file of plain arrays plus a JSON header.

Every kind of result (`Fit`, `Bootstrap`, `Posterior`, plain `Draws`) is
stored field by field, so `load(save(x)) == x` (every field, arrays
bitwise). The header (law, result kind, scalar fields, format version) is a
unicode array, so loading never needs `allow_pickle`. A law that is not
built in is not stored (it is code): pass the same `Law` to `load`; a joint
law of a built-in law is rebuilt from its groups and shared parameters.
Loading validates every field against the law before building the result.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ._bootstrap import SCHEMES, Bootstrap
from ._constrain import ConstrainedLaw, constrain
from ._data import Data
from ._draws import Draws, _copy
from ._errors import LawError, ScalejaxError
from ._fit import Fit
from ._joint import JointLaw, joint
from ._law import Law
from ._noise import NOISE_KINDS, NoiseModel
from ._npz import read_npz
from ._objectives import LOSSES, Loss
from ._output import write_atomic
from .laws import available
from .laws import get as get_law
from .solvers import STATUS_NAMES, Solution

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "scalejax-result"
FORMAT_VERSION = 2
_KINDS = ("Draws", "Fit", "Bootstrap", "Posterior")


def save(result: Draws, path: str | os.PathLike) -> Path:
    """Save a `Fit`, `Bootstrap`, `Posterior` or plain `Draws` to one `.npz` file (no pickle), atomically.

    Args:
        result: the result to save.
        path: the file to write (conventionally ending in `.npz`; written as given).

    Returns:
        The path written.

    Example:
        >>> import scalejax as sj, tempfile, os
        >>> fit = sj.fit("power", x={"x": [1.0, 2.0, 4.0, 8.0, 16.0]}, y=[3.0, 2.5, 2.2, 2.05, 1.97])
        >>> path = sj.save(fit, os.path.join(tempfile.mkdtemp(), "fit.npz"))
        >>> sj.load(path) == fit
        True
    """
    kind = type(result).__name__
    if not isinstance(result, Draws) or kind not in _KINDS:
        raise ScalejaxError(
            f"cannot save a {type(result).__name__}: scalejax.save takes a Fit, a Bootstrap, a Posterior or Draws"
        )
    arrays: dict[str, np.ndarray] = {}
    from . import __version__

    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scalejax_version": __version__,
        "kind": kind,
        "law": _law_header(result.law),
        "result": _put(result, arrays, ""),
    }
    arrays["header"] = np.array(json.dumps(header, allow_nan=True))
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
        A `Fit`, a `Bootstrap`, a `Posterior` or `Draws`, as saved. Any damaged,
        inconsistent or foreign file raises a `ScalejaxError` with one line.
    """
    path = Path(path)
    header, arrays = read_npz(path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ScalejaxError(f"{path}: not a scalejax result file")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ScalejaxError(
            f"{path}: format version {version} is not supported by this scalejax (it reads version {FORMAT_VERSION}); "
            f"the file was written by scalejax {header.get('scalejax_version', '?')}, load it with that version"
        )
    resolved = _resolve_law(header.get("law"), law, path)
    kind = header.get("kind")
    if kind not in _KINDS:
        raise ScalejaxError(f"{path}: unknown result kind {kind!r}")
    try:
        return _get(kind, resolved, header["result"], arrays, "")
    except ScalejaxError as err:
        raise ScalejaxError(f"{path}: damaged or inconsistent result file ({err})") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        detail = f"missing or malformed {err}" if isinstance(err, KeyError) else str(err)
        raise ScalejaxError(f"{path}: damaged or inconsistent result file ({detail})") from None


# ---------------------------------------------------------------------------------------------
# Laws


def _law_header(law: Law) -> dict:
    out = {"name": law.name, "params": list(law.param_names), "inputs": list(law.inputs)}
    if isinstance(law, JointLaw):
        out["joint"] = {
            "base": law.base.name,
            "groups": [_jsonable(g) for g in law.groups],
            "shared": list(law.shared),
        }
    if isinstance(law, ConstrainedLaw):
        out["constrained"] = {
            "base": _law_header(law.base),
            "fixed": [[k, float(v)] for k, v in law.fixed],
            "tied": [list(g) for g in law.tied],
        }
    return out


def _constrained_law(spec: dict, path: Path) -> Law:
    """A constrained law from its header: the base (built in, or a joint law of one) with its fixed and tied."""
    try:
        base = _resolve_law(spec["base"], None, path)
        fixed = {str(k): float(v) for k, v in spec["fixed"]}
        return constrain(base, fixed=fixed, tied=[tuple(str(n) for n in g) for g in spec["tied"]])
    except (LawError, TypeError, KeyError, ValueError) as err:
        raise ScalejaxError(f"{path}: damaged constrained law in the header ({err})") from None


def _resolve_law(meta, law: Law | None, path: Path) -> Law:
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise ScalejaxError(f"{path}: not a scalejax result file (no law in the header)")
    name = meta["name"]
    if law is None:
        spec = meta.get("joint")
        if isinstance(meta.get("constrained"), dict):
            law = _constrained_law(meta["constrained"], path)
        elif isinstance(spec, dict) and spec.get("base") in available():
            try:
                law = joint(spec["base"], groups=list(spec["groups"]), shared=list(spec["shared"]))
            except (LawError, TypeError, KeyError) as err:
                raise ScalejaxError(f"{path}: damaged joint law in the header ({err})") from None
        elif name in available():
            law = get_law(name)
        else:
            raise LawError(
                f"{path}: the result is of law {name!r}, which is not built in; pass the same law: "
                f"scalejax.load({str(path)!r}, law=my_law)"
            )
    elif not isinstance(law, Law):
        raise LawError(f"law= must be a scalejax.Law, got {type(law).__name__}")
    if law.name != name or list(law.param_names) != meta.get("params") or list(law.inputs) != meta.get("inputs"):
        raise LawError(
            f"{path}: the result is of law {name!r} with parameters {meta.get('params')} and inputs "
            f"{meta.get('inputs')}; the law given is {law.name!r} with parameters {list(law.param_names)} and "
            f"inputs {list(law.inputs)}"
        )
    return law


# ---------------------------------------------------------------------------------------------
# Values: JSON for scalars and structure, arrays beside it.


def _encode(value, arrays: dict, key: str):
    if isinstance(value, np.ndarray):
        arrays[key] = _plain(value)
        return {"__array__": key}
    if isinstance(value, Mapping):
        return {"__dict__": [[str(k), _encode(v, arrays, f"{key}.{i}")] for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, tuple | list):
        return {"__seq__": [_encode(v, arrays, f"{key}.{i}") for i, v in enumerate(value)]}
    return _jsonable(value)


def _decode(value, arrays: dict, depth: int = 0):
    if depth > 32:
        raise ScalejaxError("the header is nested too deeply")
    if isinstance(value, dict):
        if "__array__" in value:
            return arrays[value["__array__"]]
        if "__dict__" in value:
            return {str(k): _decode(v, arrays, depth + 1) for k, v in value["__dict__"]}
        if "__seq__" in value:
            return [_decode(v, arrays, depth + 1) for v in value["__seq__"]]
        raise ScalejaxError("unreadable value in the header")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ScalejaxError(f"unreadable value {value!r} in the header")


def _plain(values) -> np.ndarray:
    """An array NumPy can store without pickle: numbers stay numbers, anything else becomes text."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biufUSM":
        return arr
    return arr.astype(str)


def _jsonable(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


# ---------------------------------------------------------------------------------------------
# Results, field by field.


def _put(result: Draws, arrays: dict, prefix: str) -> dict:
    meta = {
        "u": _encode(result.u, arrays, f"{prefix}u"),
        "level": result.level,
        "columns": {str(k): _jsonable(v) for k, v in result.columns.items()},
    }
    kind = type(result).__name__
    if kind == "Fit":
        meta |= {"data": _put_data(result.data, arrays, f"{prefix}data."), "loss": _put_loss(result.loss)}
        meta["best"] = result.best
        meta["n_screened"] = result.stats["n_screened"]
        meta["noise_kind"] = result.noise_kind
        for field in Solution._fields:
            if getattr(result.solution, field) is not None:
                arrays[f"{prefix}solution.{field}"] = np.asarray(getattr(result.solution, field))
    elif kind == "Bootstrap":
        meta["fit"] = _put(result.fit, arrays, f"{prefix}fit.")
        meta |= {"scheme": result.scheme, "seed": result.seed, "n_resamples": result.n_resamples}
        meta["n_rescued"] = result.n_rescued
        meta["n_underdetermined"] = result.n_underdetermined
        meta["noise"] = _encode(result.noise, arrays, f"{prefix}noise")
        meta["warnings"] = list(result.warnings)
        arrays[f"{prefix}objective"] = result.objective
        arrays[f"{prefix}warm_starts"] = result.warm_starts
    elif kind == "Posterior":
        meta["fit"] = None if result.fit is None else _put(result.fit, arrays, f"{prefix}fit.")
        meta["data"] = None if result.data is None else _put_data(result.data, arrays, f"{prefix}data.")
        meta |= {"likelihood": result.likelihood, "method": result.method, "floor": result.floor}
        meta |= {"seed": result.seed, "labels": list(result.labels)}
        meta["noise"] = _encode(result.noise, arrays, f"{prefix}noise")
        meta["by_chain"] = _encode(result.by_chain, arrays, f"{prefix}by_chain")
        meta["diagnostics"] = _encode(result.diagnostics, arrays, f"{prefix}diagnostics")
        meta["noise_model"] = _put_noise_model(result.noise_model)
        meta["trials"] = (
            None if result.trials is None else _encode(result.trials, arrays, f"{prefix}trials")
        )  # issue 16
    else:
        meta["center_u"] = _encode(result.center_u, arrays, f"{prefix}center_u")
        meta["noise"] = _encode(result.noise, arrays, f"{prefix}noise")
        meta["cov_u"] = None if result.cov_u is None else _encode(result.cov_u, arrays, f"{prefix}cov_u")
        meta["data"] = None if result.data is None else _put_data(result.data, arrays, f"{prefix}data.")
        meta["loss"] = None if result.loss is None else _put_loss(result.loss)
        meta |= {"log_scale": result.log_scale, "warnings": list(result.warnings)}
        meta["stats"] = _encode(result.stats, arrays, f"{prefix}stats")
        meta["noise_model"] = _put_noise_model(result.noise_model)
    if result.calibration is not None:
        meta["calibration"] = _put_calibration(result.calibration, arrays, f"{prefix}calibration.")
    return meta


def _get(kind: str, law: Law, meta: dict, arrays: dict, prefix: str) -> Draws:
    out = _get_result(kind, law, meta, arrays, prefix)
    if meta.get("calibration") is not None:
        calibrated = _copy(out)
        object.__setattr__(
            calibrated, "calibration", _get_calibration(meta["calibration"], arrays, f"{prefix}calibration.")
        )
        return calibrated
    return out


def _get_result(kind: str, law: Law, meta: dict, arrays: dict, prefix: str) -> Draws:
    u = _matrix(_decode(meta["u"], arrays), law, "u")
    level = float(meta["level"])
    columns = {str(k): v for k, v in dict(meta["columns"]).items()}
    if kind == "Fit":
        data = _get_data(meta["data"], arrays, f"{prefix}data.", law)
        solution = Solution(*(np.asarray(arrays[f"{prefix}solution.{f}"]) for f in Solution._fields))
        n = solution.u.shape[0] if solution.u.ndim == 2 else -1
        if (
            solution.u.ndim != 2
            or solution.u.shape[1] != law.n_params
            or any(np.shape(a) != (n,) for a in solution[1:])
        ):
            raise ScalejaxError(f"the starts' results do not match the {law.n_params} parameters of law {law.name!r}")
        if not np.isin(solution.status, list(STATUS_NAMES)).all():
            raise ScalejaxError("unknown status codes among the starts")
        best = meta["best"]
        if not (isinstance(best, int) and not isinstance(best, bool) and 0 <= best < n):
            raise ScalejaxError(f"best start {best!r} is not one of the {n} starts")
        if not np.all(np.isfinite(solution.u[best])):
            raise ScalejaxError("the best start's parameters are not finite")
        noise_kind = meta["noise_kind"]
        if noise_kind not in (*NOISE_KINDS, "auto"):
            raise ScalejaxError(f"unknown noise kind {noise_kind!r}")
        out = Fit(
            law,
            data,
            _get_loss(meta["loss"]),
            solution,
            best,
            level=level,
            n_screened=int(meta["n_screened"]),
            noise=noise_kind,
        )
        if not np.array_equal(out.u, u, equal_nan=True):
            raise ScalejaxError("the stored optimum is not the best start's")
        return out
    if kind == "Bootstrap":
        fit_ = _get("Fit", law, meta["fit"], arrays, f"{prefix}fit.")
        objective = np.asarray(arrays[f"{prefix}objective"], dtype=np.float64)
        if objective.shape != (u.shape[0],):
            raise ScalejaxError("one objective per draw is needed")
        if meta["scheme"] not in SCHEMES:
            raise ScalejaxError(f"unknown scheme {meta['scheme']!r}")
        n_resamples = int(meta["n_resamples"])
        if n_resamples < u.shape[0]:
            raise ScalejaxError("more draws than resamples")
        n_under = int(meta["n_underdetermined"])
        if not 0 <= n_under <= n_resamples:
            raise ScalejaxError("more under-determined resamples than resamples")
        # The note is the one warning a bootstrap adds after the fit's and its failed resamples'.
        notes = [w for w in meta["warnings"] if isinstance(w, str) and "fewer distinct runs" in w]
        return Bootstrap(
            fit_,
            u,
            objective,
            scheme=meta["scheme"],
            seed=int(meta["seed"]),
            n_resamples=n_resamples,
            warm_starts=_matrix(arrays[f"{prefix}warm_starts"], law, "warm_starts"),
            n_rescued=int(meta["n_rescued"]),
            level=level,
            noise=_per_draw(_decode(meta["noise"], arrays), u.shape[0], "noise"),
            n_underdetermined=n_under,
            underdetermined_note=notes[0] if notes else None,
        )
    if kind == "Posterior":
        from .bayes import Posterior

        fit_ = None if meta["fit"] is None else _get("Fit", law, meta["fit"], arrays, f"{prefix}fit.")
        data = None if meta["data"] is None else _get_data(meta["data"], arrays, f"{prefix}data.", law)
        noise = _per_draw(_decode(meta["noise"], arrays), u.shape[0], "noise")
        by_chain = _decode(meta["by_chain"], arrays)
        shapes = {np.shape(v) for v in by_chain.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2 or np.prod(next(iter(shapes))) != u.shape[0]:
            raise ScalejaxError("the draws by chain do not match the draws")
        return Posterior(
            law,
            u,
            noise=noise,
            by_chain=by_chain,
            diagnostics=_decode(meta["diagnostics"], arrays),
            likelihood=str(meta["likelihood"]),
            method=str(meta["method"]),
            data=data,
            columns=columns,
            fit_=fit_,
            labels=tuple(meta["labels"]),
            floor=float(meta["floor"]),
            level=level,
            seed=int(meta["seed"]),
            noise_model=_get_noise_model(meta.get("noise_model")),
            trials=None if meta.get("trials") is None else _decode(meta["trials"], arrays),  # issue 16
        )
    cov = None if meta["cov_u"] is None else np.asarray(_decode(meta["cov_u"], arrays), dtype=np.float64)
    if cov is not None and cov.shape != (law.n_params, law.n_params):
        raise ScalejaxError("the covariance does not match the law's parameters")
    return Draws(
        law,
        u,
        center_u=_matrix(_decode(meta["center_u"], arrays), law, "center_u")[0],
        noise=_per_draw(_decode(meta["noise"], arrays), u.shape[0], "noise"),
        log_scale=bool(meta["log_scale"]),
        cov_u=cov,
        data=None if meta["data"] is None else _get_data(meta["data"], arrays, f"{prefix}data.", law),
        loss=None if meta["loss"] is None else _get_loss(meta["loss"]),
        columns=columns,
        level=level,
        stats=_decode(meta["stats"], arrays),
        warnings=tuple(meta["warnings"]),
        noise_model=_get_noise_model(meta.get("noise_model")),
    )


# ---------------------------------------------------------------------------------------------
# Noise models and calibrations: values of plain numbers (JSON), with the backtest tables as arrays.


def _put_noise_model(model: NoiseModel | None):
    return None if model is None else _jsonify(dataclasses.asdict(model))


def _jsonify(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonify(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonify(v) for v in value]
    return _jsonable(value)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def _get_noise_model(meta) -> NoiseModel | None:
    if meta is None:
        return None
    if not isinstance(meta, dict) or meta.get("kind") not in NOISE_KINDS:
        raise ScalejaxError("unreadable noise model")
    fields = {f.name for f in dataclasses.fields(NoiseModel)}
    if set(meta) != fields:
        raise ScalejaxError("the noise model's fields are not the expected ones")
    values = {k: _tuples(v) for k, v in meta.items()}
    k = 1 + len(NoiseModel(**values).covariates)
    coef, cov = values["coef"], values["cov_entries"]
    if len(coef) != k or len(cov) != k or any(len(row) != k for row in cov) or len(values["centers"]) < 1:
        raise ScalejaxError("the noise model's coefficients do not match its kind")
    if not all(isinstance(v, int | float) and np.isfinite(v) for v in coef):
        raise ScalejaxError("the noise model's coefficients are not finite numbers")
    return NoiseModel(**values)


def _put_calibration(cal, arrays: dict, prefix: str) -> dict:
    meta = {}
    for f in dataclasses.fields(cal):
        value = getattr(cal, f.name)
        if f.name == "noise":
            meta["noise"] = _put_noise_model(value)
        elif isinstance(value, pd.DataFrame):
            meta[f.name] = {
                "columns": [str(c) for c in value.columns],
                "index_name": _jsonable(value.index.name),
            }
            for i, column in enumerate(value.columns):
                arrays[f"{prefix}{f.name}.{i}"] = _plain(value[column].to_numpy())
            arrays[f"{prefix}{f.name}.index"] = _plain(value.index.to_numpy())
        else:
            meta[f.name] = _jsonify(value)
    return meta


_LATER_CALIBRATION_FIELDS = {"input", "input_slope", "input_range", "input_cv_gains"}


def _get_calibration(meta: dict, arrays: dict, prefix: str):
    from .analysis._calibrate import DISTANCE_SCALES, Calibration

    fields = {f.name for f in dataclasses.fields(Calibration)}
    # Files written before the input term (`input`, `input_slope`, ...) load with its defaults.
    if not isinstance(meta, dict) or not (fields - _LATER_CALIBRATION_FIELDS <= set(meta) <= fields):
        raise ScalejaxError("the calibration's fields are not the expected ones")
    values = {}
    for name, value in meta.items():
        if name == "noise":
            values[name] = _get_noise_model(value)
        elif name in ("folds", "errors"):
            columns = {c: arrays[f"{prefix}{name}.{i}"] for i, c in enumerate(value["columns"])}
            index = pd.Index(arrays[f"{prefix}{name}.index"], name=value["index_name"])
            values[name] = pd.DataFrame(columns, index=index)
        else:
            values[name] = _tuples(value)
    if values["direction"] not in (1, -1) or values["distance_scale"] not in DISTANCE_SCALES:
        raise ScalejaxError("the calibration's direction or distance scale is not a known one")
    if values.get("input") is not None and not isinstance(values["input"], str):
        raise ScalejaxError("the calibration's input is not a name")
    for name in ("edge", "tau0", "slope", "lever", "input_slope"):
        if name in values and not (isinstance(values[name], int | float) and np.isfinite(values[name])):
            raise ScalejaxError(f"the calibration's {name} is not a finite number")
    return Calibration(**values)


def _matrix(values, law: Law, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fi" or arr.ndim not in (1, 2) or arr.shape[-1] != law.n_params or arr.size == 0:
        raise ScalejaxError(f"{name} must hold numbers, {law.n_params} per row (the parameters of {law.name!r})")
    arr = np.atleast_2d(arr.astype(np.float64))
    if not np.all(np.isfinite(arr)):
        raise ScalejaxError(f"{name} holds non-finite values; saved draws are always finite")
    return arr


def _per_draw(values, n: int, name: str) -> dict:
    if not isinstance(values, dict):
        raise ScalejaxError(f"{name} must be a table of draws")
    out = {}
    for k, v in values.items():
        arr = np.asarray(v)
        if arr.dtype.kind not in "fi" or arr.shape != (n,):
            raise ScalejaxError(f"{name} {k!r} must hold one number per draw")
        out[k] = arr.astype(np.float64)
    return out


def _put_loss(loss: Loss) -> dict:
    return {"kind": loss.kind, "delta": float(loss.delta), "over_weight": float(loss.over_weight)}


def _get_loss(meta: dict) -> Loss:
    if meta.get("kind") not in LOSSES:
        raise ScalejaxError(f"unknown loss kind {meta.get('kind')!r}")
    delta, over = float(meta["delta"]), float(meta.get("over_weight", 1.0))
    if not (delta > 0 and np.isfinite(delta) and over > 0 and np.isfinite(over)):
        raise ScalejaxError("the loss settings are not positive numbers")
    return Loss(meta["kind"], delta, over)


def _put_data(data: Data, arrays: dict, prefix: str) -> dict:
    for name, values in data.x.items():
        arrays[f"{prefix}x.{name}"] = values
    arrays[f"{prefix}y"] = data.y
    arrays[f"{prefix}weights"] = data.weights
    if data.groups is not None:
        arrays[f"{prefix}groups"] = _plain(data.groups)
    if data.index is not None:
        arrays[f"{prefix}index"] = _plain(data.index.to_numpy())
    for name, values in data.sizes.items():
        arrays[f"{prefix}size.{name}"] = values
    return {
        "inputs": list(data.x),
        "sizes": list(data.sizes),
        "columns": {str(k): _jsonable(v) for k, v in data.columns.items()},
        "index_name": _jsonable(data.index.name) if data.index is not None else None,
        "has_groups": data.groups is not None,
        "has_index": data.index is not None,
    }


def _get_data(meta: dict, arrays: dict, prefix: str, law: Law) -> Data:
    inputs = list(meta["inputs"])
    if set(inputs) != set(law.inputs):
        raise ScalejaxError(f"the data's inputs {inputs} are not the law's {list(law.inputs)}")
    x = {name: np.asarray(arrays[f"{prefix}x.{name}"], dtype=np.float64) for name in inputs}
    y = np.asarray(arrays[f"{prefix}y"], dtype=np.float64)
    weights = np.asarray(arrays[f"{prefix}weights"], dtype=np.float64)
    n = y.shape[0] if y.ndim == 1 else -1
    if n < 1 or any(v.shape != (n,) for v in (*x.values(), weights)):
        raise ScalejaxError("the data's columns have different lengths")
    if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
        raise ScalejaxError("the data's weights are not finite and >= 0")
    groups = arrays[f"{prefix}groups"] if meta.get("has_groups") else None
    index = arrays[f"{prefix}index"] if meta.get("has_index") else None
    if (groups is not None and groups.shape != (n,)) or (index is not None and index.shape != (n,)):
        raise ScalejaxError("the data's groups or row labels do not match its rows")
    sizes = {name: np.asarray(arrays[f"{prefix}size.{name}"], dtype=np.float64) for name in meta.get("sizes", [])}
    if any(v.shape != (n,) for v in sizes.values()):
        raise ScalejaxError("the data's run sizes do not match its rows")
    return Data(
        x=x,
        y=y,
        weights=weights,
        groups=groups,
        index=None if index is None else pd.Index(index, name=meta.get("index_name")),
        columns=dict(meta["columns"]),
        sizes=sizes,
    )

"""Embedded example data, loaders for public scaling-law data, and preprocessing of training curves.

The embedded tables are synthetic (drawn from published fitted laws, see
`_generate.py`); the loaders read real public data into the standard frame
with columns `N` (parameters), `D` (tokens), `C` (FLOPs) and `loss`. The
checkpoint helpers (`final_rows`, `last_k_mean`, `skip_first`,
`moving_average`, `add_anchor`) turn per-checkpoint logs into the tables a fit
takes; the paper loaders (`read_olmo_ladder`) are built from them.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pandas as pd

from .._errors import DataError
from .._prepare import add_anchor as add_anchor
from .._prepare import final_rows as final_rows
from .._prepare import last_k_mean as last_k_mean
from .._prepare import moving_average as moving_average
from .._prepare import skip_first as skip_first
from ._generate import CHINCHILLA_TRUTH as CHINCHILLA_TRUTH
from ._olmo import OLMO_LADDER_TASKS as OLMO_LADDER_TASKS
from ._olmo import OLMoLadder as OLMoLadder
from ._olmo import read_olmo_ladder as read_olmo_ladder

__all__ = [
    "CHINCHILLA_TRUTH",
    "OLMO_LADDER_TASKS",
    "OLMoLadder",
    "add_anchor",
    "available_examples",
    "final_rows",
    "last_k_mean",
    "load_example",
    "moving_average",
    "read_epoch_chinchilla",
    "read_gadre_overtraining",
    "read_olmo_ladder",
    "skip_first",
]

_EXAMPLES = {
    "chinchilla": (
        "chinchilla_synthetic.csv",
        "Synthetic: 9 isoFLOP budgets (6e18-3e21 FLOPs) x 9 model sizes, loss drawn from the Chinchilla law "
        "with Besiroglu et al. 2024's refit parameters and 1.5% log-normal noise.",
    ),
}


def available_examples() -> dict[str, str]:
    """Name -> description of each embedded example table."""
    return {name: text for name, (_, text) in _EXAMPLES.items()}


def load_example(name: str = "chinchilla") -> pd.DataFrame:
    """An embedded synthetic example table (see `available_examples()`)."""
    if name not in _EXAMPLES:
        raise DataError(f"unknown example {name!r}; available: {', '.join(_EXAMPLES)}")
    frame = pd.read_csv(files(__package__) / _EXAMPLES[name][0])
    frame.attrs["source"] = _EXAMPLES[name][1]
    return frame


def read_epoch_chinchilla(path, *, drop_highest: int = 5) -> pd.DataFrame:
    """Read Epoch AI's digitised Chinchilla runs (`svg_extracted_data.csv`).

    Tokens are `D = Training FLOP / (6 N)`. The usual protocol (Besiroglu et
    al. 2024) drops the 5 highest-loss runs, leaving 240.

    Returns:
        A frame with columns `N`, `D`, `C`, `loss`, sorted as in the file.
    """
    raw = pd.read_csv(path)
    needed = ["Model Size", "Training FLOP", "loss"]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: columns {missing} not found; is this Epoch's svg_extracted_data.csv?")
    frame = pd.DataFrame(
        {
            "N": raw["Model Size"].astype(np.float64),
            "D": raw["Training FLOP"].astype(np.float64) / (6 * raw["Model Size"].astype(np.float64)),
            "C": raw["Training FLOP"].astype(np.float64),
            "loss": raw["loss"].astype(np.float64),
        }
    )
    if drop_highest:
        frame = frame.drop(frame["loss"].nlargest(drop_highest).index)
    return frame.reset_index(drop=True)


def read_gadre_overtraining(root) -> pd.DataFrame:
    """Gadre et al. 2024's over-training runs: one row per model.

    Args:
        root: the `gadre_overtraining` folder (with `models/*.json` and `evals/`).

    Returns:
        Columns `data` (training set), `N`, `D`, `C` (= 6 N D), `M` (= D / N),
        `loss` (C4 validation loss) and `err` (top-1 error averaged over the
        model's in-context evaluation tasks; NaN when its eval file is missing).

    References:
        Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks.
    """
    import json
    from pathlib import Path

    root = Path(root)
    paths = sorted((root / "models").glob("*.json"))
    if not paths:
        raise DataError(f"no model files in {root / 'models'}; give the gadre_overtraining folder")
    rows = []
    for path in paths:
        model = json.loads(path.read_text())
        hp = model["hyperparameters"]
        c4 = [r["loss"] for r in model["results"] if "c4_val" in r["val_data"][0]]
        if not c4:
            raise DataError(f"{path.name} has no C4 validation loss")
        evals = root / "evals" / f"evaluation_{model['name']}_heavy.json"
        err = np.nan
        if evals.is_file():
            icl = json.loads(evals.read_text())["eval_metrics"]["icl"]
            err = 1.0 - float(np.mean(list(icl.values())))
        n, d = float(hp["params"]), float(hp["tokens"])
        rows.append(
            {"data": model["dataset_name"], "N": n, "D": d, "C": 6 * n * d, "M": d / n, "loss": c4[0], "err": err}
        )
    return pd.DataFrame(rows)

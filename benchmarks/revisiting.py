"""The learning-curve benchmark of Alabdulmohsin et al. (2022): fit each curve on `Training == 1`, score the rest.

For every curve (domain, task, model) of ../shared/data/revisiting (the language
file deduplicated), each law is fitted to the fit points of every curve at once
with `sj.fit_many` (one batched solve per law), and scored by the RMSE of
log loss on the extrapolation points (`Training == 0`).

Usage:
    python benchmarks/revisiting.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import scalejax as sj

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "revisiting"
LAWS = ("power", "bnsl", "m4")


def curves() -> pd.DataFrame:
    frame = pd.concat(
        [pd.read_csv(DATA / f"benchmark.{name}.csv").drop_duplicates() for name in ("lang", "vision")],
        ignore_index=True,
    )
    frame["curve"] = frame["Domain"] + " | " + frame["Task"] + " | " + frame["Model"]
    return frame


def predict_rows(law, table: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Each row's prediction with its own curve's fitted parameters."""
    params = table.loc[rows["curve"], list(law.param_names)]
    with jax.enable_x64(True):
        p = {k: jnp.asarray(params[k].to_numpy(dtype=np.float64)) for k in law.param_names}
        return np.asarray(law.predict(p, {"x": jnp.asarray(rows["Seen Examples"].to_numpy(dtype=np.float64))}))


def main():
    frame = curves()
    fit_rows, holdout = frame[frame["Training"] == 1], frame[frame["Training"] == 0]
    summary, per_curve = [], {}
    for name in LAWS:
        law = sj.laws.get(name)
        start = time.perf_counter()
        table = sj.fit_many(law, fit_rows, x={"x": "Seen Examples"}, y="Loss", by="curve", loss="squared_log")
        elapsed = time.perf_counter() - start
        pred = predict_rows(law, table, holdout)
        err = pd.Series(np.log(pred) - np.log(holdout["Loss"].to_numpy()), index=holdout.index)
        rmse = err.pow(2).groupby(holdout["curve"]).mean().pow(0.5)
        per_curve[name] = rmse
        summary.append(
            {
                "law": name,
                "curves fitted (converged)": f"{int((table['status'] == 'converged').sum())}/{len(table)}",
                "median log RMSE": rmse.median(),
                "mean log RMSE": rmse.mean(),
                "curves where best": 0,
                "fit_many s (incl. compile)": elapsed,
            }
        )
    best = pd.DataFrame(per_curve).idxmin(axis=1).value_counts()
    for row in summary:
        row["curves where best"] = int(best.get(row["law"], 0))
    out = pd.DataFrame(summary)
    print(
        f"{frame['curve'].nunique()} curves, {len(fit_rows)} fit and {len(holdout)} extrapolation points; "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| " + " | ".join(out.columns) + " |")
    print("|" + "---|" * out.shape[1])
    for row in out.itertuples(index=False):
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")


if __name__ == "__main__":
    main()

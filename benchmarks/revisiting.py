"""The learning-curve benchmark of Alabdulmohsin et al. (2022): fit each curve on `Training == 1`, score the rest.

Protocol: every curve (domain, task, model) of ../shared/data/revisiting (the
language file deduplicated: it repeats rows), fitted on its `Training == 1`
points and scored by the RMSE of log loss on its `Training == 0` points; the
mean over the 92 curves is the headline number.

1. Laws through `sj.fit_many` (squared log loss, the law's default start grid):
   `power` and `bnsl`, every curve in one batched call per law.
2. M4 as the paper defines its estimator, `sj.laws.m4_fit`: the defining
   equation fitted in log-excess space under data-dependent bounds, with the
   published evaluation's settings per domain (error rates, IC and BIG-Bench:
   eps_0 capped at 1 and started at 1, or 1.001 for BIG-Bench; log-perplexity,
   NMT and LM: no cap, started at 1); predictions by the `m4` law.
3. The same estimator per curve in NumPy (`benchmarks/m4_reference.py`, written
   from the paper's description: the baseline a user would run), in this
   process on the same data, for the speed ratio and a check that both give
   the same estimates.

Usage:
    python benchmarks/revisiting.py                        # everything (the NumPy loop takes an hour or more)
    python benchmarks/revisiting.py --reference-curves 10  # time the NumPy loop on 10 curves, extrapolate
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy

import scalejax as sj

sys.path.insert(0, str(Path(__file__).resolve().parent))
from m4_reference import ReferenceM4  # the per-curve NumPy estimator

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "revisiting"
LAWS = ("power", "bnsl")


def curves() -> pd.DataFrame:
    """Both files, the language file deduplicated, with the published evaluation's M4 settings per domain."""
    frame = pd.concat(
        [pd.read_csv(DATA / f"benchmark.{name}.csv").drop_duplicates() for name in ("lang", "vision")],
        ignore_index=True,
    )
    frame["curve"] = frame["Domain"] + " | " + frame["Task"] + " | " + frame["Model"]
    error_rate = frame["Domain"].isin(["IC", "BB"])
    frame["upper"] = np.where(error_rate, 1.0, np.nan)
    frame["eps_0_start"] = np.where(frame["Domain"] == "BB", 1.001, 1.0)
    return frame


def log_rmse(law, table: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """Each curve's RMSE of log loss, every row predicted with its own curve's fitted parameters."""
    params = table.loc[rows["curve"], list(law.param_names)]
    with jax.enable_x64(True):
        p = {k: jnp.asarray(params[k].to_numpy(dtype=np.float64)) for k in law.param_names}
        pred = np.asarray(law.predict(p, {"x": jnp.asarray(rows["Seen Examples"].to_numpy(dtype=np.float64))}))
    err = pd.Series(np.log(pred) - np.log(rows["Loss"].to_numpy()), index=rows.index)
    return err.pow(2).groupby(rows["curve"]).mean().pow(0.5)


def scalejax_m4(fit_rows: pd.DataFrame, holdout: pd.DataFrame):
    start = time.perf_counter()
    table = sj.laws.m4_fit(fit_rows, x="Seen Examples", y="Loss", by="curve", upper="upper", eps_0="eps_0_start")
    rmse = log_rmse(sj.laws.get("m4"), table, holdout)
    return table, rmse, time.perf_counter() - start


def reference_m4(fit_rows: pd.DataFrame, holdout: pd.DataFrame, names) -> tuple[pd.DataFrame, pd.Series, float]:
    """The per-curve NumPy estimator on `names` (fit, then predict each holdout point by its grid search)."""
    rows, rmse = [], {}
    start = time.perf_counter()
    for name in names:
        fit_c, hold_c = fit_rows[fit_rows["curve"] == name], holdout[holdout["curve"] == name]
        upper = hold_c["upper"].iloc[0]
        est = ReferenceM4(
            None if np.isnan(upper) else float(upper), float(hold_c["eps_0_start"].iloc[0]), frozen_design=True
        ).fit(fit_c["Seen Examples"].to_numpy(dtype=float), fit_c["Loss"].to_numpy(dtype=float))
        pred = est.predict(hold_c["Seen Examples"].to_numpy(dtype=float))
        rmse[name] = float(np.sqrt(np.mean((np.log(pred) - np.log(hold_c["Loss"].to_numpy())) ** 2)))
        rows.append(
            {
                "curve": name,
                "eps_inf": est.eps_inf,
                "eps_0": est.eps_0,
                "beta": est.beta,
                "c": -est.c,
                "alpha": est.alpha,
            }
        )
    return pd.DataFrame(rows).set_index("curve"), pd.Series(rmse), time.perf_counter() - start


def markdown(table: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float | np.floating) else str(v)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * table.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-curves", type=int, default=None, help="curves for the NumPy loop (default: all)")
    parser.add_argument("--skip-laws", action="store_true", help="only the M4 comparison")
    args = parser.parse_args(argv)

    frame = curves()
    fit_rows, holdout = frame[frame["Training"] == 1], frame[frame["Training"] == 0]
    names = sorted(frame["curve"].unique())
    print(
        f"{len(names)} curves, {len(fit_rows)} fit and {len(holdout)} extrapolation points; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, jax {jax.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}; load average at start {os.getloadavg()[0]:.1f}\n"
    )

    summary, per_curve = [], {}
    if not args.skip_laws:
        for name in LAWS:
            law = sj.laws.get(name)
            start = time.perf_counter()
            table = sj.fit_many(law, fit_rows, x={"x": "Seen Examples"}, y="Loss", by="curve", loss="squared_log")
            elapsed = time.perf_counter() - start
            per_curve[name] = log_rmse(law, table, holdout)
            summary.append({"law": name, "estimator": "fit_many, squared log loss", "seconds": elapsed})
    m4_table, m4_rmse, m4_seconds = scalejax_m4(fit_rows, holdout)
    per_curve["m4"] = m4_rmse
    summary.append({"law": "m4", "estimator": "m4_fit (the paper's estimator)", "seconds": m4_seconds})
    best = pd.DataFrame(per_curve).idxmin(axis=1).value_counts()
    rows = []
    for row in summary:
        r = per_curve[row["law"]]
        rows.append(
            {
                "law": row["law"],
                "estimator": row["estimator"],
                "median log RMSE": r.median(),
                "mean log RMSE": r.mean(),
                "curves where best": int(best.get(row["law"], 0)),
                "s (incl. compile)": row["seconds"],
            }
        )
    print(markdown(pd.DataFrame(rows)), "\n")
    domain = m4_rmse.index.str.split(" | ").str[0]
    print(
        "m4_fit by domain:",
        {d: round(float(v), 4) for d, v in m4_rmse.groupby(domain).mean().items()},
        "\n",
        flush=True,
    )

    subset = names if args.reference_curves is None else names[: args.reference_curves]
    if not subset:
        return
    ref_table, ref_rmse, ref_seconds = reference_m4(fit_rows, holdout, subset)
    # Timed again after the loop, under the load the loop ran in (the first call above includes compilation).
    _, _, m4_again = scalejax_m4(fit_rows, holdout)
    n = len(subset)
    scaled = ref_seconds * len(names) / n
    ours = m4_rmse.loc[subset]
    same = np.isclose(ref_table["eps_inf"], m4_table.loc[subset, "eps_inf"], rtol=1e-6, atol=1e-9)
    print(
        f"| estimator | curves | mean log RMSE | s | s for 92 curves |\n|---|---:|---:|---:|---:|\n"
        f"| scalejax m4_fit + m4 law (vmapped), first call | {len(names)} | {m4_rmse.mean():.4f} | {m4_seconds:.1f} | "
        f"{m4_seconds:.1f} |\n"
        f"| scalejax m4_fit + m4 law, after the NumPy loop | {len(names)} | {m4_rmse.mean():.4f} | {m4_again:.1f} | "
        f"{m4_again:.1f} |\n"
        f"| per-curve NumPy estimator | {n} | {ref_rmse.mean():.4f} | {ref_seconds:.1f} | "
        f"{scaled:.1f}{'' if n == len(names) else ' (extrapolated)'} |\n"
    )
    print(
        f"speed ratio: {scaled / m4_seconds:.1f}x (first call), {scaled / m4_again:.1f}x (after the loop); on those "
        f"{n} curves scalejax {ours.mean():.4f} against {ref_rmse.mean():.4f}; same eps_inf (1e-6) on "
        f"{int(same.sum())}/{n}; scalejax better on {int((ours < ref_rmse - 1e-12).sum())}, worse on "
        f"{int((ours > ref_rmse + 1e-12).sum())}; load average at end {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()

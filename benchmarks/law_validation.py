"""Validate the law library on real public data (../shared/data) and print the tables of benchmarks/RESULTS.md.

- overtrain (Gadre et al. 2024): fit on the small models (N <= 411M, every token
  multiplier M) of each training set, predict C4 validation loss of the 1.4B and
  6.9B models; 95% bootstrap intervals (rows scheme).
- chinchilla -> sigmoid_floor chained (OLMo ladder, Bhagia et al. 2024), the
  paper's protocol (`sj.datasets.read_olmo_ladder`): the eight tasks of the
  paper (MMLU, HellaSwag, ARC-C, ARC-E, PIQA, CSQA, SocialIQA, OpenBookQA);
  step 1 fits task loss (bpb) averaged over each ladder run's last 5
  checkpoints, step 2 fits accuracy on task loss over every ladder checkpoint
  after skipping each run's first 10% and a 5-checkpoint moving average, plus
  the anchor (0, 1), with the top of the sigmoid bounded at 1; both
  bootstrapped and chained by `sj.analysis.chain_predict` to the 7B and 13B
  targets, whose truth is the last value of the 5-checkpoint moving average.
  (`benchmarks/reproduce/olmo_ladder.py` gives the point predictions beside
  the paper's errors.)
- downstream_exp (Gadre et al.): mean top-1 error over the 46 in-context tasks
  against C4 loss, fitted on the small models, predicted for the large ones.
- bnsl / bnsl2 / power (Caballero et al.): 4-digit addition fit/holdout split,
  holdout log RMSE.
- data_constrained (Muennighoff et al. 2023): datablations, fit on the
  checkpoints (D >= 5e9 tokens) of runs with at most 7 epochs, predict the final
  loss of the 7-, 14- and 44-epoch runs; and data_constrained_full (with the
  excess-parameter term) fitted on the final losses of the C4 runs with at most
  7 epochs, predicting the 14- and 44-epoch runs.

Usage:
    python benchmarks/law_validation.py [--boot 200] > /tmp/validation.md
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

import scalejax as sj

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def gadre_frame(root: Path = DATA / "gadre_overtraining") -> pd.DataFrame:
    """One row per model: training set, N, D, M = D/N and the C4 validation loss."""
    return sj.datasets.read_gadre_overtraining(root).drop(columns=["C", "err"])


def gadre_downstream_frame(root: Path = DATA / "gadre_overtraining") -> pd.DataFrame:
    """`gadre_frame` plus `err`: the model's top-1 error averaged over the 46 in-context tasks of its eval file."""
    return sj.datasets.read_gadre_overtraining(root).drop(columns=["C"])


def validate_gadre(n_boot: int) -> pd.DataFrame:
    frame = gadre_frame()
    out = []
    for data, group in frame.groupby("data"):
        small, big = group[group["N"] < 1e9], group[group["N"] > 1e9]
        boot = sj.bootstrap("overtrain", small, x={"N": "N", "D": "D"}, y="loss", n=n_boot, seed=0)
        pred = boot.predict(big)
        for (_, row), (_, p) in zip(big.iterrows(), pred.iterrows(), strict=True):
            out.append(
                {
                    "training set": data,
                    "target": f"{row['N'] / 1e9:.1f}B, M={row['M']:.0f}",
                    "true": row["loss"],
                    "predicted": p["y"],
                    "rel. error": (p["y"] - row["loss"]) / row["loss"],
                    "95% interval": f"[{p['lo']:.4f}, {p['hi']:.4f}]",
                    "covers": bool(p["lo"] <= row["loss"] <= p["hi"]),
                    "eta": boot.fit.params["eta"],
                }
            )
    return pd.DataFrame(out)


def validate_gadre_downstream() -> pd.DataFrame:
    frame = gadre_downstream_frame()
    out = []
    for data, group in frame.groupby("data"):
        small, big = group[group["N"] < 1e9], group[group["N"] > 1e9]
        fit = sj.fit("downstream_exp", small, x={"L": "loss"}, y="err")
        for (_, row), p in zip(big.iterrows(), fit.predict(big).y, strict=True):
            out.append(
                {
                    "training set": data,
                    "target": f"{row['N'] / 1e9:.1f}B, M={row['M']:.0f}",
                    "C4 loss": row["loss"],
                    "true error": row["err"],
                    "predicted": p,
                    "rel. error": (p - row["err"]) / row["err"],
                }
            )
    return pd.DataFrame(out)


def validate_olmo(n_boot: int) -> pd.DataFrame:
    ladder = sj.datasets.read_olmo_ladder(DATA / "olmo_ladder")
    out = []
    for task in sj.datasets.OLMO_LADDER_TASKS:
        step1 = sj.bootstrap(
            "chinchilla", ladder.step1[ladder.step1["task"] == task], x={"N": "N", "D": "D"}, y="bpb", n=n_boot, seed=0
        )
        step2 = sj.bootstrap(
            "sigmoid_floor",
            ladder.step2[ladder.step2["task"] == task],
            x={"L": "bpb"},
            y="acc",
            n=n_boot,
            seed=0,
            loss="squared",
        )
        tg = ladder.targets[ladder.targets["task"] == task]
        pred = sj.analysis.chain_predict(step1, step2, {"N": tg["N"].to_numpy(), "D": tg["D"].to_numpy()})
        for (_, row), (_, p) in zip(tg.iterrows(), pred.iterrows(), strict=True):
            out.append(
                {
                    "task": task,
                    "target": row["target"],
                    "true bpb": row["bpb"],
                    "pred. bpb": p["mid"],
                    "true acc": row["acc"],
                    "pred. acc": p["y"],
                    "rel. error": abs(p["y"] - row["acc"]) / row["acc"],
                    "95% interval": f"[{p['lo']:.3f}, {p['hi']:.3f}]",
                    "covers": bool(p["lo"] <= row["acc"] <= p["hi"]),
                }
            )
    return pd.DataFrame(out)


def validate_bnsl() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "bnsl_4digit" / "four_digit_addition.csv")
    fit_rows, hold = frame[frame["split"] == "fit"], frame[frame["split"] == "holdout"]
    out = []
    for name in ("bnsl", "bnsl2", "power"):
        fit = sj.fit(name, fit_rows, x={"x": "dataset_size"}, y="test_loss", loss="squared_log")
        pred = fit.predict(hold).y.to_numpy()
        out.append(
            {
                "law": name,
                "holdout log RMSE": float(np.sqrt(np.mean((np.log(pred) - np.log(hold["test_loss"])) ** 2))),
                "holdout predicted": ", ".join(f"{v:.3f}" for v in pred),
                "holdout true": ", ".join(f"{v:.3f}" for v in hold["test_loss"]),
            }
        )
    return pd.DataFrame(out)


def validate_datablations() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "datablations" / "datablations_losses.csv")
    frame["N"] = frame["num_params"].str.rstrip("B").astype(float) * 1e9
    xs = {"N": "N", "D": "token_num", "U": "tokens_per_epoch"}
    out = []
    for data, group in frame.groupby("data"):
        final = group.loc[group.groupby(["num_params", "epochs"])["token_num"].idxmax()]
        hold = final[final["epochs"] >= 7]
        fit_ckpt = sj.fit(
            "data_constrained", group[(group["epochs"] <= 7) & (group["token_num"] >= 5e9)], x=xs, y="loss"
        )
        fit_full = sj.fit("data_constrained_full", final[final["epochs"] <= 7], x=xs, y="loss")
        pairs = zip(hold.iterrows(), fit_ckpt.predict(hold).y, fit_full.predict(hold).y, strict=True)
        for (_, row), p, q in pairs:
            out.append(
                {
                    "data": data,
                    "N": row["num_params"],
                    "epochs": int(row["epochs"]),
                    "true": row["loss"],
                    "data_constrained (checkpoints)": p,
                    "rel. error": (p - row["loss"]) / row["loss"],
                    "data_constrained_full (final losses)": q,
                    "rel. error (full)": (q - row["loss"]) / row["loss"],
                }
            )
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (floats to 4 decimals) without the optional tabulate dependency."""

    def cell(v):
        return f"{v:.4f}" if isinstance(v, float | np.floating) else str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * table.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boot", type=int, default=200, help="bootstrap resamples")
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f}\n")
    print("### overtrain on gadre_overtraining (C4 validation loss)\n")
    print(markdown(validate_gadre(args.boot)), "\n", flush=True)
    print("### downstream_exp on gadre_overtraining (mean top-1 error of 46 tasks from the true C4 loss)\n")
    print(markdown(validate_gadre_downstream()), "\n", flush=True)
    print("### bnsl on bnsl_4digit (fit 14 points, holdout 3)\n")
    print(markdown(validate_bnsl()), "\n", flush=True)
    print("### data_constrained on datablations\n")
    print(markdown(validate_datablations()), "\n", flush=True)
    print("### chinchilla -> sigmoid_floor chained on olmo_ladder, the paper's protocol (7B and 13B accuracy)\n")
    print(markdown(validate_olmo(args.boot)), "\n", flush=True)


if __name__ == "__main__":
    main()

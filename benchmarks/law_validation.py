"""Validate the law library on real public data (../shared/data) and print the tables of benchmarks/RESULTS.md.

- overtrain (Gadre et al. 2024): fit on the small models (N <= 411M, every token
  multiplier M) of each training set, predict C4 validation loss of the 1.4B and
  6.9B models; 95% bootstrap intervals (rows scheme).
- chinchilla -> sigmoid_floor chained (OLMo ladder, Bhagia et al. 2024): step 1
  fits task loss (bpb) on the final checkpoints of the ladder runs, step 2 fits
  accuracy on task loss over every ladder checkpoint; both bootstrapped and
  chained by `sj.analysis.chain_predict` to the 7B and 13B targets.
- downstream_exp (Gadre et al.): mean top-1 error over the 46 in-context tasks
  against C4 loss, fitted on the small models, predicted for the large ones.
- bnsl / bnsl2 / power (Caballero et al.): 4-digit addition fit/holdout split,
  holdout log RMSE.
- data_constrained (Muennighoff et al. 2023): datablations, fit on the
  checkpoints (D >= 5e9 tokens) of runs with at most 7 epochs, predict the final
  loss of the 7-, 14- and 44-epoch runs.

Usage:
    python benchmarks/law_validation.py [--boot 200] > /tmp/validation.md
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

import scalejax as sj

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
OLMO_TASKS = (
    "hellaswag_val",
    "arc_easy_test",
    "arc_challenge_test",
    "piqa_val",
    "csqa_val",
    "socialiqa_val",
    "openbookqa_test",
    "winogrande_val",
)
# A small Chinchilla grid for the 16-run ladder (the 4,500-start grid is slow on so few points).
LADDER_STARTS = {
    k: v.ravel()
    for k, v in zip(
        ("E", "A", "B", "alpha", "beta"),
        np.meshgrid((0.3, 1.0), (10.0, 1e3), (10.0, 1e3), (0.2, 0.5), (0.2, 0.5), indexing="ij"),
        strict=True,
    )
}


def gadre_frame(root: Path = DATA / "gadre_overtraining") -> pd.DataFrame:
    """One row per model: training set, N, D, M = D/N and the C4 validation loss."""
    return sj.datasets.read_gadre_overtraining(root).drop(columns=["C", "err"])


def gadre_downstream_frame(root: Path = DATA / "gadre_overtraining") -> pd.DataFrame:
    """`gadre_frame` plus `err`: the model's top-1 error averaged over the 46 in-context tasks of its eval file."""
    return sj.datasets.read_gadre_overtraining(root).drop(columns=["C"])


def olmo_frames(root: Path = DATA / "olmo_ladder"):
    """Ladder checkpoints (long: one row per run, step and task) and the 7B / 13B targets."""
    meta = json.loads((root / "final.json").read_text())
    rows = []
    for spec in meta.values():
        if spec["mode"] != "train":
            continue
        for p in spec["paths"]:
            run = pd.read_csv(root / "runs" / Path(p).name)
            for task in OLMO_TASKS:
                rows.append(
                    pd.DataFrame(
                        {
                            "run": Path(p).stem,
                            "N": float(spec["n"]),
                            "D": run["throughput/total_tokens"],
                            "step": run["_step"],
                            "task": task,
                            "bpb": run[f"eval/downstream_bpb/{task}_rc_5shot_bpb"],
                            "acc": run[f"eval/downstream/{task}_rc_5shot_len_norm"],
                        }
                    )
                )
    ladder = pd.concat(rows, ignore_index=True).dropna()
    d7 = pd.read_csv(root / "runs" / "peteish7_eval_anneal.csv").iloc[-1]
    d13 = pd.read_csv(root / "runs" / "peteish13_eval_final.csv").iloc[-1]
    targets = []
    for name, n, d, row in (
        ("7B", meta["7B-4T"]["n"], d7["throughput/total_tokens"], d7),
        ("13B", meta["13B-5T"]["n"], d13["_step"] * d13["batch_size_in_tokens"], d13),
    ):
        for task in OLMO_TASKS:
            targets.append(
                {
                    "target": name,
                    "task": task,
                    "N": float(n),
                    "D": float(d),
                    "bpb": row[f"eval/downstream_bpb/{task}_rc_5shot_bpb"],
                    "acc": row[f"eval/downstream/{task}_rc_5shot_len_norm"],
                }
            )
    return ladder, pd.DataFrame(targets)


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
    ladder, targets = olmo_frames()
    final = ladder.loc[ladder.groupby(["run", "task"])["step"].idxmax()]
    out = []
    for task in OLMO_TASKS:
        step1 = sj.bootstrap(
            "chinchilla",
            final[final["task"] == task],
            x={"N": "N", "D": "D"},
            y="bpb",
            n=n_boot,
            seed=0,
            starts=LADDER_STARTS,
        )
        step2 = sj.bootstrap(
            "sigmoid_floor", ladder[ladder["task"] == task], x={"L": "bpb"}, y="acc", n=n_boot, seed=0, loss="squared"
        )
        tg = targets[targets["task"] == task]
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
                    "abs. error": p["y"] - row["acc"],
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
    out = []
    for data, group in frame.groupby("data"):
        final = group.loc[group.groupby(["num_params", "epochs"])["token_num"].idxmax()]
        fit_rows = group[(group["epochs"] <= 7) & (group["token_num"] >= 5e9)]
        fit = sj.fit("data_constrained", fit_rows, x={"N": "N", "D": "token_num", "U": "tokens_per_epoch"}, y="loss")
        hold = final[final["epochs"] >= 7]
        for (_, row), p in zip(hold.iterrows(), fit.predict(hold).y, strict=True):
            out.append(
                {
                    "data": data,
                    "N": row["num_params"],
                    "epochs": int(row["epochs"]),
                    "true": row["loss"],
                    "predicted": p,
                    "rel. error": (p - row["loss"]) / row["loss"],
                    "R*": fit.params["R_star"],
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
    print("### chinchilla -> sigmoid_floor chained on olmo_ladder (accuracy of the 7B and 13B targets)\n")
    print(markdown(validate_olmo(args.boot)), "\n", flush=True)


if __name__ == "__main__":
    main()

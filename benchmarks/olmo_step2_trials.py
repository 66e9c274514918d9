"""Other ways to calibrate step 2 of the OLMo chain, tried for issue 14's one unmet backtest (not adopted).

The chain of `forecast_coverage.py` (step 1 task loss from N and D, step 2
accuracy from task loss, `sj.analysis.chain_predict`, 200-resample rows
bootstraps, seed 0) on both preparations of the ladder: the paper's
(`sj.datasets.read_olmo_ladder`, Bhagia et al. 2024) and the last checkpoints
(`ladder_lastckpt.py`, the default row). For each way of handling step 2 it
prints the calibrated 95% predictive interval's coverage of the 16 targets
(8 tasks x 7B, 13B), mean width and mean interval score, and the misses:

- `by compute`: the library's default (step 2 calibrated by compute, from the
  runs' N and D the step-2 table keeps); the rows of forecast_coverage.py.
- `by N`: step 2 calibrated by model size (fit the smaller sizes' checkpoints,
  forecast the next size's), `calibrate(step2.fit, by="N")`.
- `groups`: step 2 bootstrapped by whole runs (`scheme="groups", group="run"`:
  its rows are checkpoints of 16 runs), calibrated by compute.

Then the paper's preparation with the ladder's 3.2B runs (1, 2, 5 and 10
times Chinchilla's tokens; in the data folder but not in the paper's fit)
added to both steps, by compute: does a model between 1.3B and 7B show the
jump? Then, on the paper's preparation, step 2 alone at ARC-Easy's true task losses
(rows against groups bootstrap), and step 2 calibrated by task loss towards
lower loss with the anchor row (task loss 0, which has no log scale) left out.

Usage:
    python benchmarks/olmo_step2_trials.py        # about 100 s on 2 cores
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import scalejax as sj
from scalejax.analysis import interval_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ladder_lastckpt import DATA, LADDER_STARTS, OLMO_TASKS, olmo_frames

X_ND = {"N": "N", "D": "D"}
N_BOOT, SEED, LEVEL = 200, 0, 0.95
# The 3.2B ladder model's parameter count and FLOPs per token (allenai/OLMo-ladder's MODEL_PARAMS and
# MODEL_FLOPS, counted as final.json counts the other sizes).
LADDER_3B = {"n": 3169537280, "flops": 22970355200}


def with_3b_runs(folder: Path) -> Path:
    """An olmo_ladder folder in `folder` whose final.json adds the 3.2B runs at 1-10xC to the ladder."""
    src = DATA / "olmo_ladder"
    meta = json.loads((src / "final.json").read_text())
    paths = [f"runs/3B-{m}xC.csv" for m in (1, 2, 5, 10)]
    meta = {"3.2B": {"paths": paths, "mode": "train", "label": "3.2B", **LADDER_3B}, **meta}
    root = folder / "olmo_ladder"
    root.mkdir()
    (root / "final.json").write_text(json.dumps(meta))
    (root / "runs").symlink_to(src / "runs", target_is_directory=True)
    return root


TRIALS = ("by compute", "by N", "groups")


def preparations():
    """(name, step-2 variants, tasks, step-1 rows, step-2 rows, targets, step-1 starts) of each preparation."""
    lad = sj.datasets.read_olmo_ladder(DATA / "olmo_ladder")
    yield "paper", TRIALS, list(lad.step1.task.unique()), lad.step1, lad.step2, lad.targets, None
    ladder, targets = olmo_frames()
    last = ladder.loc[ladder.groupby(["run", "task"])["step"].idxmax()]
    yield "last checkpoints", TRIALS, list(OLMO_TASKS), last, ladder, targets, LADDER_STARTS
    with tempfile.TemporaryDirectory() as tmp:
        lad = sj.datasets.read_olmo_ladder(with_3b_runs(Path(tmp)))
    tasks = list(lad.step1.task.unique())
    yield "paper + the 3.2B ladder runs", ("by compute",), tasks, lad.step1, lad.step2, lad.targets, None


def chain(tasks, step1_rows, step2_rows, targets, starts, variant: str) -> dict:
    covered, widths, scores, misses = 0, [], [], []
    for task in tasks:
        f1 = step1_rows[step1_rows["task"] == task].reset_index(drop=True)
        f2 = step2_rows[step2_rows["task"] == task].reset_index(drop=True)
        groups = {"scheme": "groups", "group": "run"} if variant == "groups" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step1 = sj.bootstrap("chinchilla", f1, x=X_ND, y="bpb", n=N_BOOT, seed=SEED, starts=starts)
            step2 = sj.bootstrap(
                "sigmoid_floor", f2, x={"L": "bpb"}, y="acc", n=N_BOOT, seed=SEED, loss="squared", **groups
            )
            second = sj.analysis.calibrate(step2.fit, by="N") if variant == "by N" else "auto"
            tg = targets[targets["task"] == task].reset_index(drop=True)
            new = pd.DataFrame({"N": tg["N"].to_numpy(), "D": tg["D"].to_numpy()})
            out = sj.analysis.chain_predict(step1, step2, new, level=LEVEL, seed=SEED, calibration=("auto", second))
        y, lo, hi = tg["acc"].to_numpy(), out.pred_lo.to_numpy(), out.pred_hi.to_numpy()
        inside = (lo <= y) & (y <= hi)
        covered += int(inside.sum())
        widths += list(hi - lo)
        scores += list(interval_score(y, lo, hi, LEVEL))
        misses += [
            f"{task}/{t} {v:.3f} not in [{a:.3f}, {b:.3f}]"
            for t, v, a, b, ok in zip(tg.target, y, lo, hi, inside, strict=True)
            if not ok
        ]
    return {"covers": f"{covered}/{len(widths)}", "width": np.mean(widths), "score": np.mean(scores), "misses": misses}


def step2_alone_at_the_true_task_loss() -> None:
    lad = sj.datasets.read_olmo_ladder(DATA / "olmo_ladder")
    f2 = lad.step2[lad.step2.task == "arc_easy"].reset_index(drop=True)
    tg = lad.targets[lad.targets.task == "arc_easy"]
    new = pd.DataFrame({"bpb": tg.bpb.to_numpy(), "N": tg.N.to_numpy(), "D": tg.D.to_numpy()})
    print(
        f"\nARC-Easy, paper preparation: step 2 alone at the true task losses {tg.bpb.round(3).tolist()}, truth {tg.acc.round(3).tolist()}"
    )
    for scheme, group in (("rows", None), ("groups", "run")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s2 = sj.bootstrap(
                "sigmoid_floor",
                f2,
                x={"L": "bpb"},
                y="acc",
                n=N_BOOT,
                seed=SEED,
                loss="squared",
                scheme=scheme,
                group=group,
            )
            p = s2.predict(new, calibration=None)
        print(f"  {scheme:6s} bootstrap: y {p.y.round(3).tolist()}, predictive upper end {p.pred_hi.round(3).tolist()}")
    no_anchor = f2[f2.bpb > 0].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit2 = sj.fit("sigmoid_floor", no_anchor, x={"L": "bpb"}, y="acc", loss="squared")
        cal = sj.analysis.calibrate(fit2, by="L", direction=-1)
    e = cal.errors
    share = e.assign(inside=np.abs(e.error / e.sd) < 1.959963984540054).groupby("fold")["inside"].mean()
    print(
        f"  by task loss (anchor left out): cv gain {cal.cv_gain:.1f}; folds cover {', '.join(f'{v:.1%}' for v in share)}"
    )


def main() -> None:
    rows = []
    for name, variants, tasks, s1, s2, targets, starts in preparations():
        for variant in variants:
            r = chain(tasks, s1, s2, targets, starts, variant)
            rows.append({"preparation": name, "step 2": variant, **{k: v for k, v in r.items() if k != "misses"}})
            print(name, variant, r["covers"], "; ".join(r["misses"]), flush=True)
    print()
    print("| preparation | step 2 | covers | mean width | mean interval score |\n|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preparation']} | {r['step 2']} | {r['covers']} | {r['width']:.3f} | {r['score']:.4f} |")
    step2_alone_at_the_true_task_loss()


if __name__ == "__main__":
    main()

"""The OLMo model ladder (Bhagia et al. 2024) read into the paper's step-1, step-2 and target tables.

The ladder's files are per-checkpoint evaluation logs (allenai/OLMo-ladder,
Apache-2.0); `final.json` lists the ladder runs (mode "train") and the 7B /
13B targets (mode "eval") with their parameter counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .._errors import DataError
from .._prepare import add_anchor, last_k_mean, moving_average, skip_first

__all__ = ["OLMO_LADDER_TASKS", "OLMoLadder", "read_olmo_ladder"]

# The paper's eight tasks: name -> the evaluation keys averaged into it, with their weights.
# MMLU is the average of its four test subsets weighted by their sizes (Bhagia et al.'s
# weights, 0.215 / 0.335 / 0.219 / 0.231); the other tasks are one key each.
_MMLU = {
    "mmlu_stem_test": 0.215,
    "mmlu_humanities_test": 0.335,
    "mmlu_social_sciences_test": 0.219,
    "mmlu_other_test": 0.231,
}
OLMO_LADDER_TASKS: dict[str, dict[str, float]] = {
    "mmlu": _MMLU,
    "hellaswag": {"hellaswag_val": 1.0},
    "arc_challenge": {"arc_challenge_test": 1.0},
    "arc_easy": {"arc_easy_test": 1.0},
    "piqa": {"piqa_val": 1.0},
    "csqa": {"csqa_val": 1.0},
    "socialiqa": {"socialiqa_val": 1.0},
    "openbookqa": {"openbookqa_test": 1.0},
}
_TARGET_NAMES = {"7B-4T": "7B", "13B-5T": "13B"}


class OLMoLadder(NamedTuple):
    """The ladder as the paper's protocol uses it.

    Attributes:
        step1: one row per (task, run): `task`, `run`, `size`, `N`, `D` (the
            run's final tokens) and `bpb` (the task loss averaged over the
            run's last `last_k` checkpoints).
        step2: one row per (task, checkpoint) of the ladder runs, the first
            `skip` of each run dropped and `bpb`, `acc` smoothed by a
            `moving_avg`-checkpoint moving average; plus, per task, the anchor
            row `run="anchor"` at `bpb=0`, `acc=1` (when `anchor`).
        targets: one row per (task, target): `task`, `target` ("7B", "13B"),
            `N`, `D` (the target's final tokens), `bpb` and `acc` (the last value
            of the `moving_avg`-checkpoint moving average of the target's log:
            the truth the paper scores against).
    """

    step1: pd.DataFrame
    step2: pd.DataFrame
    targets: pd.DataFrame


def _tokens(run: pd.DataFrame) -> pd.Series:
    if "throughput/total_tokens" in run.columns:
        return run["throughput/total_tokens"].astype(np.float64)
    return run["_step"].astype(np.float64) * run["batch_size_in_tokens"].astype(np.float64)


def _task_columns(run: pd.DataFrame, path: Path, tasks) -> pd.DataFrame:
    """bpb and accuracy of every task at every checkpoint of one run: long format."""
    parts = []
    for task in tasks:
        keys = OLMO_LADDER_TASKS[task]
        weights = np.array(list(keys.values()))
        cols = {}
        for metric, fmt in (
            ("bpb", "eval/downstream_bpb/{}_rc_5shot_bpb"),
            ("acc", "eval/downstream/{}_rc_5shot_len_norm"),
        ):
            names = [fmt.format(k) for k in keys]
            missing = [c for c in names if c not in run.columns]
            if missing:
                raise DataError(f"{path.name}: column {missing[0]!r} not found; is this an OLMo ladder log?")
            values = run[names].to_numpy(dtype=np.float64)
            cols[metric] = values @ weights / weights.sum()
        parts.append(pd.DataFrame({"task": task, "D": _tokens(run).to_numpy(), **cols}, index=run.index))
    return pd.concat(parts, ignore_index=True)


def read_olmo_ladder(
    root,
    *,
    tasks=None,
    last_k: int = 5,
    skip: float = 0.1,
    moving_avg: int = 5,
    anchor: bool = True,
) -> OLMoLadder:
    """Read the OLMo ladder into the paper's step-1 and step-2 tables and the targets' truths.

    The protocol of Bhagia et al. 2024 (defaults): step 1 fits task loss
    (bits per byte) against N and D on each ladder run's task loss averaged
    over its last 5 checkpoints; step 2 fits accuracy against task loss on
    every checkpoint of every ladder run, after dropping the first 10% of each
    run and smoothing both by a 5-checkpoint moving average, plus the anchor
    (task loss 0, accuracy 1); the targets' truth is the last value of the
    5-checkpoint moving average of their logs. The ladder runs are those of
    `final.json` (190M-1.3B at 1, 2, 5 and 10 times Chinchilla's tokens; the
    3B, 0.5xC and rerun files in the folder are not in the paper's fit).

    Args:
        root: the `olmo_ladder` folder (`final.json` and `runs/*.csv`).
        tasks: names from `OLMO_LADDER_TASKS` (default: all eight: MMLU,
            HellaSwag, ARC-Challenge, ARC-Easy, PIQA, CSQA, SocialIQA, OpenBookQA).
        last_k: checkpoints averaged for step 1.
        skip: share of each run's first checkpoints dropped for step 2.
        moving_avg: window of the step-2 and target moving average.
        anchor: add the (0, 1) anchor row per task to step 2.

    Returns:
        An `OLMoLadder` of three DataFrames (see there).

    Example:
        >>> import scalejax as sj
        >>> # ladder = sj.datasets.read_olmo_ladder("../shared/data/olmo_ladder")
        >>> # ladder.step1.query("task == 'hellaswag'")   # 16 runs: N, D, bpb

    References:
        Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders, Section 3.
    """
    root = Path(root)
    meta_path = root / "final.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path} not found; give the olmo_ladder folder (with final.json and runs/)")
    meta = json.loads(meta_path.read_text())
    tasks = list(OLMO_LADDER_TASKS) if tasks is None else [tasks] if isinstance(tasks, str) else list(tasks)
    unknown = [t for t in tasks if t not in OLMO_LADDER_TASKS]
    if unknown:
        raise DataError(f"unknown OLMo ladder tasks {unknown}; choose from {list(OLMO_LADDER_TASKS)}")
    ladder, evals = [], []
    for size, spec in meta.items():
        for p in spec["paths"]:
            path = root / "runs" / Path(p).name
            if not path.is_file():
                raise DataError(f"{path} (listed in final.json) not found")
            run = pd.read_csv(path)
            long = _task_columns(run, path, tasks)
            long.insert(1, "run", path.stem)
            long.insert(2, "size", size)
            long.insert(3, "N", float(spec["n"]))
            long["checkpoint"] = np.tile(np.arange(len(run)), len(tasks))
            (ladder if spec["mode"] == "train" else evals).append((size, long))
    if not ladder:
        raise DataError(f"{meta_path} lists no ladder runs (mode 'train')")
    ckpts = pd.concat([t for _, t in ladder], ignore_index=True)
    by = ["task", "run"]
    step1 = last_k_mean(ckpts, by=by, k=last_k, columns=["bpb"], order="checkpoint")
    step1 = step1[["task", "run", "size", "N", "D", "bpb"]].reset_index(drop=True)
    step2 = skip_first(ckpts, by=by, fraction=skip, order="checkpoint")
    step2 = moving_average(step2, by=by, window=moving_avg, columns=["bpb", "acc"], order="checkpoint")
    step2 = step2[["task", "run", "size", "N", "D", "checkpoint", "bpb", "acc"]].reset_index(drop=True)
    if anchor:
        step2 = add_anchor(step2, [{"task": t, "bpb": 0.0, "acc": 1.0} for t in tasks], run="anchor")
    rows = []
    for size, long in evals:
        smooth = moving_average(long, by="task", window=moving_avg, columns=["bpb", "acc"], order="checkpoint")
        last = smooth.groupby("task", sort=False).tail(1)
        for _, r in last.iterrows():
            rows.append(
                {
                    "task": r["task"],
                    "target": _TARGET_NAMES.get(size, size),
                    "N": r["N"],
                    "D": r["D"],
                    "bpb": r["bpb"],
                    "acc": r["acc"],
                }
            )
    targets = pd.DataFrame(rows, columns=["task", "target", "N", "D", "bpb", "acc"])
    bad = [name for name, t in (("step1", step1), ("step2", step2)) if t[["bpb"]].isna().to_numpy().any()]
    if bad:
        raise DataError(f"the ladder logs have missing task losses in {bad}; check the files in {root / 'runs'}")
    return OLMoLadder(step1, step2, targets)

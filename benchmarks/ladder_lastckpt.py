"""The OLMo ladder as the coverage and start-strategy benchmarks read it: NOT the paper's protocol.

Step 1 on each ladder run's *last* checkpoint, step 2 on every checkpoint
(no skip, no smoothing, no anchor), WinoGrande in place of MMLU, the targets'
last logged values. `benchmarks/forecast_coverage.py` (issue 14's recorded
coverage) and `benchmarks/global_strategy.py` (start strategy against the
exhaustive grid) use it; the paper's protocol (Bhagia et al. 2024) is
`sj.datasets.read_olmo_ladder`, used by `law_validation.py` and
`reproduce/olmo_ladder.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

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

"""Evidence for the global strategy: on every real data set the project fits, `"auto"` against the exhaustive grid.

For each fit that the tests and benchmarks run on ../shared/data (law, data,
loss and starts as they use them), solve every start (`strategy="all"`) and
the global strategy (`"auto"`: screen every start, polish the best distinct
ones until the best optimum is confirmed by 3 of them), and report the starts
polished, the best objective of each and their relative difference, and the
time of each (warm: every case runs once before it is timed).
`tests/test_global.py` checks the same equality on the same cases.

Usage:
    python benchmarks/global_strategy.py            # every case, a markdown table on stdout
    python benchmarks/global_strategy.py --quick    # the cases the tests run
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import scalejax as sj
from scalejax._fit import make_data, make_starts
from scalejax._objectives import make_loss
from scalejax.solvers import CONVERGED, solve_starts

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ladder_lastckpt import LADDER_STARTS, OLMO_TASKS, olmo_frames  # noqa: E402
from law_validation import DATA, gadre_downstream_frame, gadre_frame  # noqa: E402

X_ND = {"N": "N", "D": "D"}
# The 16 starts tests/test_bootstrap.py uses on the misfitting sweep.
SMALL_STARTS = np.array(
    [[e, a, b, al, 0.3] for e in (1.0, 2.0) for a in (1e2, 1e3) for b in (1e2, 1e3) for al in (0.3, 0.5)]
)


@dataclass
class Case:
    """One fit as the project runs it: `make()` returns (law, frame, x, y, options for the fit)."""

    name: str
    data: str  # folder of ../shared/data it needs
    make: Callable[[], tuple]
    quick: bool = True  # run by tests/test_global.py
    groups: dict = field(default_factory=dict)


def _epoch():
    return sj.datasets.read_epoch_chinchilla(DATA / "chinchilla_epoch" / "svg_extracted_data.csv")


def _epoch_backtest():
    frame = _epoch()
    return frame[frame["C"] < frame["C"].quantile(0.9)]


def _misfitting():
    raw = pd.read_csv(DATA / "misfitting" / "scaling_results.csv")
    raw["run"] = raw[["model", "sweep", "peak_lr", "total_steps"]].astype(str).agg("|".join, axis=1)
    return raw[raw.groupby("run").cumcount() % 8 == 0].reset_index(drop=True)


def _gadre_small(name):
    frame = gadre_frame()
    return frame[(frame["data"] == name) & (frame["N"] < 1e9)]


def _downstream_small(name):
    frame = gadre_downstream_frame()
    return frame[(frame["data"] == name) & (frame["N"] < 1e9)]


def _bnsl():
    frame = pd.read_csv(DATA / "bnsl_4digit" / "four_digit_addition.csv")
    return frame[frame["split"] == "fit"]


def _datablations(name):
    frame = pd.read_csv(DATA / "datablations" / "datablations_losses.csv")
    frame["N"] = frame["num_params"].str.rstrip("B").astype(float) * 1e9
    group = frame[frame["data"] == name]
    return group[(group["epochs"] <= 7) & (group["token_num"] >= 5e9)]


_LADDER = {}


def _ladder(task):
    if not _LADDER:
        _LADDER["frame"] = olmo_frames()[0]
    ladder = _LADDER["frame"]
    return ladder[ladder["task"] == task]


def _ladder_final(task):
    ladder = _ladder(task)
    return ladder.loc[ladder.groupby("run")["step"].idxmax()]


def cases() -> Iterator[Case]:
    yield Case(
        "chinchilla, Epoch's 240 runs, 4,500 starts",
        "chinchilla_epoch",
        lambda: ("chinchilla", _epoch(), X_ND, "loss", {}),
    )
    yield Case(
        "chinchilla, Epoch's runs below the top 10% of compute (backtest), 4,500 starts",
        "chinchilla_epoch",
        lambda: ("chinchilla", _epoch_backtest(), X_ND, "loss", {}),
        quick=False,  # the same data as the full fit above; kept out of the tests for time
    )
    yield Case(
        "chinchilla, Epoch's runs, squared log loss, 4,500 starts",
        "chinchilla_epoch",
        lambda: ("chinchilla", _epoch(), X_ND, "loss", {"loss": "squared_log"}),
        quick=False,
    )
    yield Case(
        "chinchilla, misfitting sweep (every 8th checkpoint), 16 starts",
        "misfitting",
        lambda: ("chinchilla", _misfitting(), X_ND, "loss", {"starts": SMALL_STARTS}),
    )
    yield Case(
        "chinchilla, misfitting sweep (every 8th checkpoint), 4,500 starts",
        "misfitting",
        lambda: ("chinchilla", _misfitting(), X_ND, "loss", {}),
        quick=False,
    )
    for name in ("c4_original", "rpj", "rw_original"):
        yield Case(
            f"overtrain, Gadre {name} small models",
            "gadre_overtraining",
            lambda name=name: ("overtrain", _gadre_small(name), X_ND, "loss", {}),
        )
        yield Case(
            f"downstream_exp, Gadre {name} small models",
            "gadre_overtraining",
            lambda name=name: ("downstream_exp", _downstream_small(name), {"L": "loss"}, "err", {}),
        )
    yield Case(
        "joint overtrain (shared eta), Gadre small models",
        "gadre_overtraining",
        lambda: (
            sj.joint("overtrain", groups=["c4_original", "rpj", "rw_original"], shared=["eta"]),
            gadre_frame().query("N < 1e9"),
            {**X_ND, "group": "data"},
            "loss",
            {},
        ),
    )
    for law in ("bnsl", "bnsl2", "power"):
        yield Case(
            f"{law}, 4-digit addition (fit split)",
            "bnsl_4digit",
            lambda law=law: (law, _bnsl(), {"x": "dataset_size"}, "test_loss", {"loss": "squared_log"}),
        )
    for name in ("c4", "oscar"):
        yield Case(
            f"data_constrained, datablations {name}",
            "datablations",
            lambda name=name: (
                "data_constrained",
                _datablations(name),
                {"N": "N", "D": "token_num", "U": "tokens_per_epoch"},
                "loss",
                {},
            ),
            quick=False,
        )
    for task in OLMO_TASKS:
        yield Case(
            f"chinchilla, OLMo ladder final checkpoints, {task}, 32 starts",
            "olmo_ladder",
            lambda task=task: ("chinchilla", _ladder_final(task), X_ND, "bpb", {"starts": LADDER_STARTS}),
            quick=task == "hellaswag_val",
        )
        yield Case(
            f"sigmoid_floor, OLMo ladder checkpoints, {task}",
            "olmo_ladder",
            lambda task=task: ("sigmoid_floor", _ladder(task), {"L": "bpb"}, "acc", {"loss": "squared"}),
            quick=task == "hellaswag_val",
        )


@dataclass
class Outcome:
    name: str
    n_starts: int
    polished: int
    best_auto: float
    best_all: float
    at_best_auto: int
    at_best_all: int
    seconds_auto: float
    seconds_all: float

    @property
    def rel_diff(self) -> float:
        return (self.best_auto - self.best_all) / abs(self.best_all)


def _best(sol) -> tuple[float, int]:
    ok = (sol.status == CONVERGED) & np.isfinite(sol.objective)
    best = float(np.min(sol.objective[ok]))
    return best, int(np.sum(ok & (sol.objective <= best + 1e-9 * abs(best))))


def run_case(case: Case, timed: bool = True) -> Outcome:
    """Both strategies on one case, from the data, loss and starts `sj.fit` would use."""
    law, frame, x, y, options = case.make()
    law = sj.laws.get(law)
    loss = make_loss(options.get("loss", "huber"), options.get("delta", 1e-3))
    data = make_data(law, frame, x, y, None, None, loss)
    u0 = make_starts(law, options.get("starts"))
    out = {}
    with jax.enable_x64(True):
        target = data.target(loss.log_scale)
        for strategy in ("auto", "all"):

            def solve(strategy=strategy):
                return solve_starts(law, loss, u0, data.weights, data.x, target, strategy=strategy, progress=False)

            if timed:
                solve()  # compile
            start = time.perf_counter()
            sol = solve()
            out[strategy] = (sol, time.perf_counter() - start)
    (auto, t_auto), (full, t_all) = out["auto"], out["all"]
    (best_auto, n_auto), (best_all, n_all) = _best(auto), _best(full)
    return Outcome(case.name, len(u0), len(auto.status), best_auto, best_all, n_auto, n_all, t_auto, t_all)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the cases tests/test_global.py runs")
    parser.add_argument("--only", default=None, help="only the cases whose name contains this text")
    args = parser.parse_args(argv)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [
        f"`python benchmarks/global_strategy.py{' --quick' if args.quick else ''}`; load average at start {load}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, jax {jax.__version__} "
        f"({jax.device_count()} device)",
        "",
        "| case | starts | polished (auto) | best objective, auto | relative to all | at best: auto / all | auto s | all s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases():
        if (args.quick and not case.quick) or (args.only and args.only not in case.name):
            continue
        if not (DATA / case.data).exists():
            print(f"skipped {case.name}: {DATA / case.data} not found", file=sys.stderr)
            continue
        o = run_case(case)
        lines.append(
            f"| {o.name} | {o.n_starts:,} | {o.polished} | {o.best_auto:.12g} | {o.rel_diff:+.1e} | "
            f"{o.at_best_auto} / {o.at_best_all} | {o.seconds_auto:.3f} | {o.seconds_all:.3f} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    lines.append("")
    lines.append(f"load average at end {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Do 95% predictive intervals cover held-out runs? Real backtests before and after extrapolation-aware calibration.

Every real data set in ../shared/data where a backtest makes sense, each with
its protocol (fit the smaller runs, forecast the larger ones):

- chinchilla: Epoch AI's digitised Chinchilla runs (240), top 10% of compute
  held out (the README call: `backtest(..., holdout=0.1, n_boot=200)`).
- gadre_<set>: Gadre et al. 2024's over-training law on each training set,
  fit on the models below 1B parameters (every token multiplier), forecast
  the 1.4B and 6.9B models.
- gadre5_<set>: the paper's small fit: 5 runs (11M, 79M, 154M, 411M at M=20
  and 11M at M=320), forecast the 1.4B model at its largest M and the 6.9B
  model at M=20. Too few runs for a rolling backtest: the calibrated interval
  is the uncalibrated one here; the table reports the under-determined resamples.
- olmo_chain: OLMo ladder (4 sizes x 4 token multipliers), task bpb from
  (N, D) on the final checkpoints (Chinchilla law), then accuracy from bpb on
  every checkpoint (sigmoid), chained to the 7B and 13B targets for 8 tasks
  (`ladder_lastckpt.py`: last checkpoint, no smoothing or anchor, WinoGrande
  in place of MMLU; not the paper's protocol). olmo_chain_paper: the same
  chain on the ladder as the paper prepares it (`sj.datasets.read_olmo_ladder`:
  last-5 mean, 10% skip, moving average, anchor; MMLU), reported outside the
  pool (the same 16 targets).
- misfitting: the (Mis)Fitting sweep's final checkpoints, best learning rate
  per (N, D) (81 runs), top 10% of compute held out.
- datablations_<set>: Muennighoff et al.'s data-constrained law, fit on the
  final losses of the 18 runs of at most 7 epochs (3 sizes), forecast the
  14-epoch runs; runs are ordered by epochs (D / U). The 44-epoch runs
  (`_44ep`) are past the law's domain (the loss rises with repetition) and are
  reported outside the pool; `--only datablations_ckpt` fits the checkpoints
  (D >= 5e9) instead, as law_validation.py does.
- isoflops_<study>: each isoFLOP study (runs not flagged as outliers), the
  Chinchilla law fit on every budget but the largest, forecast the largest.

For each held-out run the script records three 95% predictive intervals,
all from `sj.analysis.extrapolate` on the same 200-resample rows bootstrap of
the training runs (`chain_predict` for the OLMo chain):
`before` (the library before issue 14: the draws plus normal noise of the
training fit's residual sd, `noise=..., calibration=None`; for the chain, its
parameter interval, the only one it had), `uncalibrated` (`calibration=None`:
each resample's own noise model, constant or log-linear in log compute and
log tokens per parameter) and `calibrated` (the default: plus the extra
error of the calibration on the training runs at the run's extrapolation
distance, and at its decades of N, D or another input outside the fitted
runs' range where the rolling folds show that term). Coverage, mean width and the interval score (Gneiting & Raftery
2007) are on the fitted scale: log loss for the losses, raw accuracy for
the chain.

Usage:
    python benchmarks/forecast_coverage.py [--boot 200] [--only chinchilla,gadre] [--rows benchmarks/forecast_coverage.csv]
    python benchmarks/forecast_coverage.py --synthetic 40      # the correctly specified synthetic check
    python benchmarks/forecast_coverage.py --timing            # calibrate's cost on Chinchilla
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import scalejax as sj
from scalejax._noise import scale_key
from scalejax.analysis import interval_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ladder_lastckpt import LADDER_STARTS, OLMO_TASKS, olmo_frames
from law_validation import gadre_frame

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
LEVEL = 0.95
X_ND = {"N": "N", "D": "D"}
VARIANTS = ("before", "uncalibrated", "calibrated")


@dataclasses.dataclass
class Spec:
    """One backtest: the law, the runs, which are fitted and which forecast, and how runs are ordered."""

    name: str
    law: str
    frame: pd.DataFrame
    x: dict
    y: str
    train: np.ndarray
    held: np.ndarray
    by: str = "compute"
    loss: str = "huber"
    starts: object = None
    protocol: str = ""
    in_pool: bool = True


def chinchilla_specs():
    frame = sj.datasets.read_epoch_chinchilla(DATA / "chinchilla_epoch" / "svg_extracted_data.csv")
    # The 24 largest by compute, ties included (as `backtest(holdout=0.1)` does).
    threshold = np.sort(6 * frame.N * frame.D)[::-1][int(np.ceil(0.1 * len(frame))) - 1]
    held = (6 * frame.N * frame.D).to_numpy() >= threshold
    yield Spec("chinchilla", "chinchilla", frame, X_ND, "loss", ~held, held, protocol="top 10% of compute held out")


def gadre_specs():
    frame = gadre_frame()
    for data, group in frame.groupby("data"):
        group = group.reset_index(drop=True)
        big = (group["N"] > 1e9).to_numpy()
        yield Spec(
            f"gadre_{data}", "overtrain", group, X_ND, "loss", ~big, big, protocol="fit N < 1B, forecast 1.4B and 6.9B"
        )
    for data, group in frame.groupby("data"):
        group = group.reset_index(drop=True)
        n, m = group["N"].to_numpy(), group["M"].to_numpy()
        small = n < 5e8
        train = (small & (m == 20)) | ((n < 2e7) & (m == 320))
        big14 = (n > 1e9) & (n < 2e9)
        held = ((n > 5e9) & (m == 20)) | (big14 & (m == m[big14].max()))
        yield Spec(f"gadre5_{data}", "overtrain", group, X_ND, "loss", train, held, protocol="paper's 5-run fit")


def misfitting_specs():
    raw = pd.read_csv(DATA / "misfitting" / "scaling_results_last_ckpt_only.csv")
    frame = raw.loc[raw.groupby(["N", "D"])["loss"].idxmin(), ["N", "D", "loss", "peak_lr"]].reset_index(drop=True)
    frame[["N", "D"]] = frame[["N", "D"]].astype(np.float64)  # 6 N D overflows int64
    key = (6 * frame.N * frame.D).to_numpy()
    threshold = np.sort(key)[::-1][int(np.ceil(0.1 * len(frame))) - 1]
    held = key >= threshold
    yield Spec(
        "misfitting", "chinchilla", frame, X_ND, "loss", ~held, held, protocol="best lr per (N, D), top 10% of compute"
    )


def datablations_specs(checkpoints: bool = False):
    """Final losses of runs with at most 7 epochs fitted, the 14- and 44-epoch runs forecast, ordered by epochs (D / U).

    With `checkpoints`, the law is fitted to the intermediate checkpoints (D >= 5e9) of those runs
    instead, as in law_validation.py: a run's checkpoints are not the final losses of shorter
    runs, and their scatter is not a run's scatter (kept for comparison, out of the pool).
    """
    frame = pd.read_csv(DATA / "datablations" / "datablations_losses.csv")
    frame["N"] = frame["num_params"].str.rstrip("B").astype(float) * 1e9
    frame["epochs_seen"] = frame["token_num"] / frame["tokens_per_epoch"]
    x = {"N": "N", "D": "token_num", "U": "tokens_per_epoch"}
    for data, group in frame.groupby("data"):
        final = group.loc[group.groupby(["num_params", "epochs"])["token_num"].idxmax()]
        if checkpoints:
            train = ((group["epochs"] <= 7) & (group["token_num"] >= 5e9)).to_numpy()
            is_final = group.index.isin(final.index)
            runs = group.reset_index(drop=True)
            name, fitted = f"datablations_ckpt_{data}", "checkpoints"
        else:
            runs = final.reset_index(drop=True)
            train = (runs["epochs"] <= 7).to_numpy()
            is_final = np.ones(len(runs), dtype=bool)
            name, fitted = f"datablations_{data}", "final losses"
        # 44 epochs is past where the law applies (the loss rises: over-fitting, which it cannot
        # express); it is reported on its own and kept out of the pooled acceptance.
        for epochs, suffix in ((14, ""), (44, "_44ep")):
            yield Spec(
                f"{name}{suffix}",
                "data_constrained",
                runs,
                x,
                "loss",
                train,
                is_final & (runs["epochs"] == epochs).to_numpy(),
                by="epochs_seen",
                protocol=f"fit {fitted} of <= 7 epochs, forecast the {epochs}-epoch runs",
                in_pool=epochs == 14 and not checkpoints,
            )


def isoflop_specs():
    runs = pd.read_csv(DATA / "isoflops" / "isoflops.csv")
    runs = runs[~runs.outlier]
    for name, frame in runs.groupby("experiment", sort=True):
        frame = frame.reset_index(drop=True)
        held = (frame["budget"] == frame["budget"].max()).to_numpy()
        yield Spec(
            f"isoflops_{name.split('__')[0]}_{name.split('__')[1]}",
            "chinchilla",
            frame,
            {"N": "params", "D": "tokens"},
            "loss",
            ~held,
            held,
            protocol="largest budget held out",
        )


def _interval_rows(spec: Spec, y, y_hat, distance, intervals: dict, log_scale: bool) -> pd.DataFrame:
    f = np.log if log_scale else (lambda v: v)
    out = pd.DataFrame({"backtest": spec.name, "y": y, "y_hat": y_hat, "distance": distance})
    for name, (lo, hi) in intervals.items():
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
        out[f"{name}_covered"] = (lo <= y) & (y <= hi)
        out[f"{name}_width"] = f(np.asarray(hi)) - f(np.asarray(lo))
        out[f"{name}_score"] = interval_score(f(np.asarray(y)), f(np.asarray(lo)), f(np.asarray(hi)), LEVEL)
    return out


_FITTED: dict = {}


def _bootstrap(spec: Spec, n_boot: int, seed: int):
    """The bootstrap of a spec's training runs (reused by specs that share them), and how many resamples are
    under-determined (the bootstrap's own count)."""
    key = (spec.law, id(spec.frame), spec.train.tobytes(), n_boot, seed)
    if key not in _FITTED:
        train = spec.frame[spec.train]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot = sj.bootstrap(
                spec.law, train, x=spec.x, y=spec.y, n=n_boot, seed=seed, loss=spec.loss, starts=spec.starts
            )
        _FITTED[key] = boot
    return _FITTED[key]


def run_law_backtest(spec: Spec, n_boot: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Bootstrap the training runs and forecast the held-out runs with `sj.analysis.extrapolate`'s intervals.

    - `before`: the library before issue 14 (draws plus normal noise of the training fit's residual sd):
      `extrapolate(boot, held, noise=boot.fit.stats["residual_sd"], calibration=None)`.
    - `uncalibrated`: `extrapolate(boot, held, calibration=None)` (each resample's own noise model).
    - `calibrated`: `extrapolate(boot, held)`, the default (calibrated on the training runs by compute);
      for a spec ordered by another column (datablations: epochs), `calibration=calibrate(boot.fit, train, by=...)`.
    """
    held = spec.frame[spec.held]
    train = spec.frame[spec.train]
    boot = _bootstrap(spec, n_boot, seed)
    info = {"n_train": int(spec.train.sum()), "n_held": int(spec.held.sum())}
    info["underdetermined"] = boot.n_underdetermined / boot.n_resamples
    info["noise"] = repr(boot.noise_model)
    start = time.perf_counter()
    calibration = "auto"
    if spec.by != "compute":
        try:
            calibration = sj.analysis.calibrate(boot.fit, train, by=spec.by)
        except sj.ScalejaxError as err:
            calibration, info["calibration"] = None, f"none: {err}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = sj.analysis.extrapolate(boot, held, level=LEVEL, seed=seed, calibration=calibration)
        info["calibration_s"] = time.perf_counter() - start
        plain = sj.analysis.extrapolate(boot, held, level=LEVEL, seed=seed, calibration=None)
        sd = boot.fit.stats["residual_sd"]
        before = sj.analysis.extrapolate(boot, held, level=LEVEL, seed=seed, noise=sd, calibration=None)
    cal = calibrated.attrs["calibration"]
    info.setdefault("calibration", repr(cal) if cal is not None else f"none: {calibrated.attrs['calibration_note']}")
    intervals = {
        name: (t.y_pred_lo.to_numpy(), t.y_pred_hi.to_numpy())
        for name, t in (("before", before), ("uncalibrated", plain), ("calibrated", calibrated))
    }
    distance = calibrated.distance.to_numpy()
    if cal is None and spec.by != "compute":
        # No calibration: the distance is still reported, from the outermost fitted run.
        def key(frame):
            return scale_key({c: frame[c].to_numpy(dtype=np.float64) for c in (spec.by,)}, spec.by)

        distance = key(held) - key(train).max()
    rows = _interval_rows(spec, held[spec.y].to_numpy(), calibrated.y.to_numpy(), distance, intervals, boot.log_scale)
    rows["in_pool"] = spec.in_pool
    rows.index = held.index
    return rows, info


def run_olmo_chain(n_boot: int, seed: int, paper: bool = False) -> tuple[pd.DataFrame, dict]:
    """Both steps bootstrapped per task and chained by `sj.analysis.chain_predict`.

    `before` is `chain_predict`'s parameter interval (all it had before issue 14), `uncalibrated` its
    predictive interval with `calibration=None`, `calibrated` its default: step 1 calibrated by
    compute, and step 2 by compute too, since its table (the ladder checkpoints) has columns N and D
    that its data keep (`Data.sizes`): how far the accuracy-from-loss relation of small models is
    carried to a large one. `info["by_task_loss_covered"]` counts what step 2 calibrated by its own
    input instead (task loss, towards lower loss; the default before session 8) covers.

    `paper=True` prepares the ladder as Bhagia et al. do (`sj.datasets.read_olmo_ladder`: mean of
    the last 5 checkpoints for step 1; 10% of each run skipped, a 5-point moving average and the
    (0, 1) anchor row for step 2; MMLU), with the default starts, as `reproduce/olmo_ladder.py`.
    """
    if paper:
        lad = sj.datasets.read_olmo_ladder(DATA / "olmo_ladder")
        tasks, step1_rows, step2_rows, targets = list(lad.step1.task.unique()), lad.step1, lad.step2, lad.targets
        starts = None
    else:
        ladder, targets = olmo_frames()
        tasks, step1_rows, step2_rows = OLMO_TASKS, ladder.loc[ladder.groupby(["run", "task"])["step"].idxmax()], ladder
        starts = LADDER_STARTS
    out, info = [], {"calibration_s": 0.0, "by_task_loss_covered": 0}
    for task in tasks:
        f1 = step1_rows[step1_rows["task"] == task].reset_index(drop=True)
        f2 = step2_rows[step2_rows["task"] == task].reset_index(drop=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step1 = sj.bootstrap("chinchilla", f1, x=X_ND, y="bpb", n=n_boot, seed=seed, starts=starts)
            step2 = sj.bootstrap("sigmoid_floor", f2, x={"L": "bpb"}, y="acc", n=n_boot, seed=seed, loss="squared")
        tg = targets[targets["task"] == task].reset_index(drop=True)
        new = pd.DataFrame({"N": tg["N"].to_numpy(), "D": tg["D"].to_numpy()})
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calibrated = sj.analysis.chain_predict(step1, step2, new, level=LEVEL, seed=seed)
        info["calibration_s"] += time.perf_counter() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                by_loss = sj.analysis.calibrate(step2.fit, by="L", direction=-1)
            except sj.ScalejaxError as err:  # the paper's anchor at task loss 0 has no log scale
                by_loss = None
                info.setdefault("by_task_loss_note", str(err))
            by_task_loss = sj.analysis.chain_predict(
                step1, step2, new, level=LEVEL, seed=seed, calibration=("auto", by_loss)
            )
        truth = tg["acc"].to_numpy()
        info["by_task_loss_covered"] += int(np.sum((by_task_loss.pred_lo <= truth) & (truth <= by_task_loss.pred_hi)))
        plain = sj.analysis.chain_predict(step1, step2, new, level=LEVEL, seed=seed, calibration=None)
        name = "olmo_chain_paper" if paper else "olmo_chain"
        spec = Spec(name, "chinchilla->sigmoid_floor", tg, X_ND, "acc", np.zeros(0), np.zeros(0))
        intervals = {
            "before": (calibrated.lo.to_numpy(), calibrated.hi.to_numpy()),
            "uncalibrated": (plain.pred_lo.to_numpy(), plain.pred_hi.to_numpy()),
            "calibrated": (calibrated.pred_lo.to_numpy(), calibrated.pred_hi.to_numpy()),
        }
        rows = _interval_rows(
            spec, tg["acc"].to_numpy(), calibrated.y.to_numpy(), calibrated.distance.to_numpy(), intervals, False
        )
        rows["distance_second"] = calibrated.distance_second.to_numpy()
        rows["in_pool"] = not paper  # the same 16 targets as olmo_chain: pooled once
        rows.index = [f"{task}/{t}" for t in tg["target"]]
        out.append(rows)
        c1, c2 = calibrated.attrs["calibration"]
        info.setdefault("calibration", []).append(f"{task}: step 1 {c1!r}; step 2 {c2!r}")
        info.setdefault("noise", []).append(f"{task}: step 1 {step1.noise_model!r}; step 2 {step2.noise_model!r}")
    info["n_train"] = int(len(step1_rows) // len(tasks))
    info["n_held"] = len(targets)
    info["underdetermined"] = float("nan")
    return pd.concat(out), info


GROUPS = {
    "chinchilla": chinchilla_specs,
    "gadre": gadre_specs,
    "misfitting": misfitting_specs,
    "datablations": datablations_specs,
    "datablations_ckpt": lambda: datablations_specs(checkpoints=True),
    "isoflops": isoflop_specs,
}


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name, group in rows.groupby("backtest", sort=False):
        entry = {"held out": len(group), "max distance": group["distance"].max()}
        for v in VARIANTS:
            entry[f"{v} covers"] = int(group[f"{v}_covered"].sum())
            entry[f"{v} width"] = group[f"{v}_width"].mean()
            entry[f"{v} score"] = group[f"{v}_score"].mean()
        out[name] = entry
    return pd.DataFrame.from_dict(out, orient="index")


def markdown(table: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.4f}"
        return str(v)

    lines = ["| backtest | " + " | ".join(table.columns) + " |", "|---|" + "---:|" * table.shape[1]]
    lines += [
        "| " + str(i) + " | " + " | ".join(cell(v) for v in row) + " |"
        for i, row in zip(table.index, table.itertuples(index=False), strict=True)
    ]
    return "\n".join(lines)


def synthetic(n_sets: int, n_boot: int) -> None:
    """A correctly specified law with constant noise: calibration should change little (width, coverage)."""
    truth = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
    starts = np.array(
        [[e, a, b, al, 0.3] for e in (1.0, 2.0) for a in (1e2, 1e3) for b in (1e2, 1e3) for al in (0.3, 0.5)]
    )
    rows = []
    start = time.perf_counter()
    for i in range(n_sets):
        n, d = np.meshgrid(np.geomspace(2e7, 3e9, 8), np.geomspace(4e8, 1e11, 5), indexing="ij")
        n, d = n.ravel(), d.ravel()
        rng = np.random.default_rng(1000 + i)
        mean = truth["E"] + truth["A"] / n ** truth["alpha"] + truth["B"] / d ** truth["beta"]
        frame = pd.DataFrame({"N": n, "D": d, "loss": mean * np.exp(0.02 * rng.standard_normal(n.size))})
        key = n * d
        held = key >= np.sort(key)[::-1][7]
        spec = Spec(f"synthetic_{i}", "chinchilla", frame, X_ND, "loss", ~held, held, starts=starts)
        r, _ = run_law_backtest(spec, n_boot, seed=i)
        rows.append(r)
    rows = pd.concat(rows)
    print(
        f"synthetic: {n_sets} data sets of 40 runs (8 sizes x 5 token counts), truth = Besiroglu et al.'s fit, "
        f"log-normal noise 0.02, 8 largest by compute held out, {n_boot} resamples; {time.perf_counter() - start:.0f} s\n"
    )
    for v in VARIANTS:
        print(
            f"- {v}: covers {rows[f'{v}_covered'].mean():.3f} ({int(rows[f'{v}_covered'].sum())}/{len(rows)}), "
            f"mean width {rows[f'{v}_width'].mean():.4f}, interval score {rows[f'{v}_score'].mean():.4f}"
        )
    ratio = rows["calibrated_width"] / rows["uncalibrated_width"]
    print(
        f"- width calibrated / uncalibrated: mean {ratio.mean():.3f}, median {ratio.median():.3f}, max {ratio.max():.3f}"
    )
    print(f"- forecasts widened by more than 20%: {int((ratio > 1.2).sum())}/{len(rows)}")
    kept = rows.groupby("backtest").apply(lambda g: bool(np.allclose(g.calibrated_width, g.uncalibrated_width)))
    print(f"- data sets where the calibration kept the intervals (no growth chosen): {int(kept.sum())}/{len(kept)}")
    ratio = rows["calibrated_width"] / rows["before_width"]
    print(f"- width calibrated / before: mean {ratio.mean():.3f}, max {ratio.max():.3f}")


def timing(repeats: int = 3) -> None:
    """Time `calibrate` on the real Chinchilla runs against the 4,500-start fit it starts from (same process)."""
    frame = sj.datasets.read_epoch_chinchilla(DATA / "chinchilla_epoch" / "svg_extracted_data.csv")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sj.fit("chinchilla", frame, x=X_ND, y="loss")
    first_fit = time.perf_counter() - start
    start = time.perf_counter()
    cal = sj.analysis.calibrate(fit)
    first_cal = time.perf_counter() - start
    fits, cals = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sj.fit("chinchilla", frame, x=X_ND, y="loss")
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        cal = sj.analysis.calibrate(fit)
        cals.append(time.perf_counter() - start)
    lanes = len(cal.folds) * (1 + min(64, fit.law.n_starts))
    print(
        f"Chinchilla (240 runs): fit first call {first_fit:.1f} s, warm {min(fits):.2f} s (4,500 starts); "
        f"calibrate first call {first_cal:.1f} s, warm {min(cals):.2f} s ({len(cal.folds)} folds x 65 starts = {lanes} lanes, "
        f"{len(cal.errors)} forecasts); calibrate / fit warm = {min(cals) / min(fits):.2f}"
    )
    print(repr(cal))
    print(cal.table().to_string())
    # What a notebook sees: extrapolate's first call on a new estimate calibrates it, later calls reuse it.
    new = {"N": [70e9], "D": [1.4e12]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sj.fit("chinchilla", frame.iloc[:-1], x=X_ND, y="loss")
    start = time.perf_counter()
    sj.analysis.extrapolate(fit, new)
    first = time.perf_counter() - start
    again = []
    for _ in range(repeats):
        start = time.perf_counter()
        sj.analysis.extrapolate(fit, new)
        again.append(time.perf_counter() - start)
    print(f"extrapolate of a new fit: first call {first:.2f} s (calibrates it), again {1e3 * min(again):.1f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="chinchilla,gadre,olmo,misfitting,datablations,isoflops")
    parser.add_argument("--rows", default=None, help="write every forecast row (with its distance) to this CSV")
    parser.add_argument(
        "--synthetic", type=int, default=0, help="run the synthetic check on this many data sets instead"
    )
    parser.add_argument("--timing", action="store_true", help="time calibrate on Chinchilla instead")
    args = parser.parse_args(argv)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; python {platform.python_version()}, "
        f"jax {jax.__version__}, numpy {np.__version__}, pandas {pd.__version__}\n"
    )
    if args.timing:
        timing()
        return
    if args.synthetic:
        synthetic(args.synthetic, min(args.boot, 100))
        return
    wanted = args.only.split(",")
    rows, infos = [], {}
    for group in wanted:
        if group == "olmo":
            for paper in (False, True):
                name = "olmo_chain_paper" if paper else "olmo_chain"
                start = time.perf_counter()
                r, info = run_olmo_chain(args.boot, args.seed, paper=paper)
                info["seconds"] = time.perf_counter() - start
                rows.append(r)
                infos[name] = info
                print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            continue
        for spec in GROUPS[group]():
            start = time.perf_counter()
            r, info = run_law_backtest(spec, args.boot, args.seed)
            info["seconds"] = time.perf_counter() - start
            info["protocol"] = spec.protocol
            rows.append(r)
            infos[spec.name] = info
            print(f"{spec.name}: {info['seconds']:.0f} s", file=sys.stderr, flush=True)
    rows = pd.concat(rows)
    if args.rows:
        rows.rename_axis("row").to_csv(args.rows)
    table = summarise(rows)
    # "Every row" adds the rows outside the law's domain; the paper-protocol chain repeats olmo_chain's targets.
    every = rows[rows.backtest != "olmo_chain_paper"]
    for label, part in (("pooled", rows[rows.in_pool]), ("pooled, every row", every)):
        pooled = {"held out": len(part), "max distance": part["distance"].max()}
        for v in VARIANTS:
            pooled[f"{v} covers"] = int(part[f"{v}_covered"].sum())
            pooled[f"{v} width"] = part[f"{v}_width"].mean()
            pooled[f"{v} score"] = part[f"{v}_score"].mean()
        table.loc[label] = pooled
    print(markdown(table))
    print()
    for name, info in infos.items():
        print(f"- {name}: {info}")


if __name__ == "__main__":
    main()

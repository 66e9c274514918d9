"""The law library on real public data (../shared/data): over-training, BNSL, the OLMo ladder chain, data repetition.

The full tables (every training set, task and target) are in benchmarks/RESULTS.md,
written by benchmarks/law_validation.py, whose loaders these tests share.
"""

import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

import scalejax as sj

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from law_validation import DATA, gadre_downstream_frame, gadre_frame  # noqa: E402
from reproduce.gadre_overtraining import five_runs  # noqa: E402
from reproduce.olmo_ladder import PUBLISHED_13B  # noqa: E402


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path.resolve()} (../shared/data is absent)")
    return path


@pytest.fixture(scope="module")
def redpajama():
    need(DATA / "gadre_overtraining")
    frame = gadre_frame()
    return frame[frame["data"] == "rpj"]


def test_overtrain_predicts_the_papers_redpajama_targets_within_one_percent(redpajama):
    small, big = redpajama[redpajama["N"] < 1e9], redpajama[redpajama["N"] > 1e9]
    assert len(small) == 32 and len(big) == 3
    boot = sj.bootstrap("overtrain", small, x={"N": "N", "D": "D"}, y="loss", n=60, seed=0)
    pred = boot.predict(big)
    targets = np.isclose(big["M"].to_numpy(), 640, rtol=0.01) | (big["N"].to_numpy() > 6e9)
    assert targets.sum() == 2  # 1.4B at M=640 and 6.9B at M=20
    rel = np.abs(pred["y"].to_numpy() - big["loss"].to_numpy()) / big["loss"].to_numpy()
    assert np.all(rel[targets] < 0.01), rel
    covered = (pred["lo"].to_numpy() <= big["loss"].to_numpy()) & (big["loss"].to_numpy() <= pred["hi"].to_numpy())
    assert covered[targets].all(), pred.assign(true=big["loss"].to_numpy())


def test_bnsl_extrapolates_four_digit_addition_where_a_power_law_cannot():
    frame = _read_csv(need(DATA / "bnsl_4digit" / "four_digit_addition.csv"))
    fit_rows, hold = frame[frame["split"] == "fit"], frame[frame["split"] == "holdout"]

    def holdout_rmse(name):
        fit = sj.fit(name, fit_rows, x={"x": "dataset_size"}, y="test_loss", loss="squared_log")
        return np.sqrt(np.mean((np.log(fit.predict(hold).y.to_numpy()) - np.log(hold["test_loss"])) ** 2))

    bnsl, power = holdout_rmse("bnsl"), holdout_rmse("power")
    assert bnsl < 0.03, bnsl
    assert power > 10 * bnsl


@pytest.fixture(scope="module")
def ladder():
    return sj.datasets.read_olmo_ladder(need(DATA / "olmo_ladder"))


# The 13B targets' accuracy as allenai/OLMo-ladder's src/scripts/paper/figures/chained_main.csv records it ("Actual").
PUBLISHED_13B_ACCURACY = {
    "mmlu": 0.5161402368605137,
    "hellaswag": 0.831905996799469,
    "arc_challenge": 0.638054609298706,
    "arc_easy": 0.8717171669006347,
    "piqa": 0.8295973896980285,
    "csqa": 0.7410319447517395,
    "socialiqa": 0.6159672379493714,
    "openbookqa": 0.4863999903202057,
}


def test_olmo_ladder_loader_returns_the_papers_tables(ladder):
    assert ladder.step1.groupby("task").size().to_dict() == dict.fromkeys(PUBLISHED_13B, 16)  # 4 sizes x 4 multipliers
    anchors = ladder.step2[ladder.step2["run"] == "anchor"]
    assert len(anchors) == 8 and (anchors["bpb"] == 0).all() and (anchors["acc"] == 1).all()
    truth = ladder.targets[ladder.targets["target"] == "13B"].set_index("task")["acc"]
    for task, acc in PUBLISHED_13B_ACCURACY.items():
        assert truth[task] == pytest.approx(acc, abs=1e-12), task
    assert set(ladder.targets["D"]) == {3945065873408.0, 5000088518656.0}  # the paper's target token counts


@pytest.mark.parametrize("task", ["arc_easy", "hellaswag"])
def test_built_in_chain_reproduces_the_published_13b_error(ladder, task):
    step1 = sj.fit("chinchilla", ladder.step1[ladder.step1["task"] == task], x={"N": "N", "D": "D"}, y="bpb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sj.FitWarning)  # the top may run to its bound of 1
        step2 = sj.fit(
            "sigmoid_floor", ladder.step2[ladder.step2["task"] == task], x={"L": "bpb"}, y="acc", loss="squared"
        )
    target = ladder.targets[(ladder.targets["task"] == task) & (ladder.targets["target"] == "13B")]
    pred = sj.analysis.chain_predict(step1, step2, target[["N", "D"]].reset_index(drop=True))
    error = abs(pred["y"].iloc[0] - target["acc"].iloc[0]) / target["acc"].iloc[0]
    assert error == pytest.approx(PUBLISHED_13B[task], abs=1e-3)  # within 0.1 points of the paper's


def test_sigmoid_top_is_bounded_at_one_where_the_unbounded_fit_overshoots(ladder):
    mmlu = ladder.step2[ladder.step2["task"] == "mmlu"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sj.FitWarning)
        free = sj.fit(sj.laws.sigmoid_floor_law(top=None), mmlu, x={"L": "bpb"}, y="acc", loss="squared")
        bounded = sj.fit("sigmoid_floor", mmlu, x={"L": "bpb"}, y="acc", loss="squared")
    assert free.params["b"] > 1.01  # an accuracy above 100% at zero task loss
    assert bounded.params["b"] <= 1.0


def test_gadre_five_run_protocol_gives_the_published_redpajama_errors(redpajama):
    fit = sj.fit("overtrain", five_runs(redpajama), x={"N": "N", "D": "D"}, y="loss", loss="squared")
    big = redpajama[redpajama["N"] > 1e9]
    rel = (fit.predict(big).y.to_numpy() - big["loss"].to_numpy()) / big["loss"].to_numpy()
    by_target = {(round(n / 1e8), round(m)): r for n, m, r in zip(big["N"], big["M"], rel, strict=True)}
    assert round(100 * by_target[(14, 640)], 2) == 0.71  # Gadre et al.: 0.71%
    assert round(100 * by_target[(69, 20)], 2) == 0.73  # and 0.73%


def test_full_data_constrained_law_matches_the_published_fit_and_extrapolates_repetition():
    frame = _read_csv(need(DATA / "datablations" / "datablations_losses.csv"))
    # Muennighoff et al.'s published parameters (huggingface/datablations README) give the README's printed losses.
    a, b, e, alpha, rd, rn = 6.255414, 7.3049974, 0.6254804, 0.3526596, 15.387756, 5.309743
    published = {
        "E": np.exp(e),
        "A": np.exp(a),
        "B": np.exp(b),
        "alpha": alpha,
        "beta": alpha,
        "R_star": rd,
        "R_N_star": rn,
    }
    law = sj.laws.get("data_constrained_full")
    x = {"N": np.array([6.34e9, 8.67e9]), "D": np.array([242e9, 178e9]), "U": np.array([25e9, 25e9])}
    with jax.enable_x64(True):
        np.testing.assert_allclose(law.predict(published, x), [2.2256440889984477, 2.2269634075087867], rtol=1e-12)
    # Fitted on the C4 runs' final losses at up to 7 epochs, it predicts the 14-epoch runs.
    frame["N"] = frame["num_params"].str.rstrip("B").astype(float) * 1e9
    final = frame.loc[frame.groupby(["data", "num_params", "epochs"])["token_num"].idxmax()]
    c4 = final[final["data"] == "c4"]
    fit_rows, hold = c4[c4["epochs"] <= 7], c4[c4["epochs"] == 14]
    xs = {"N": "N", "D": "token_num", "U": "tokens_per_epoch"}
    errors = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sj.FitWarning)
        for name in ("data_constrained", "data_constrained_full"):
            fit = sj.fit(name, fit_rows, x=xs, y="loss")
            errors[name] = np.abs(fit.predict(hold).y.to_numpy() - hold["loss"].to_numpy()) / hold["loss"].to_numpy()
    assert np.all(errors["data_constrained_full"] < 0.03), errors  # recorded: 0.1%, 2.4%, 0.9%
    assert errors["data_constrained_full"].mean() < errors["data_constrained"].mean()  # recorded: 2.0%, 4.6%, 2.8%


def _read_csv(path):
    import pandas as pd

    return pd.read_csv(path)


def test_joint_overtrain_with_one_shared_exponent_across_the_three_training_sets():
    need(DATA / "gadre_overtraining")
    frame = gadre_frame()
    small, big = frame[frame["N"] < 1e9], frame[frame["N"] > 1e9]
    law = sj.joint("overtrain", groups=["c4_original", "rpj", "rw_original"], shared=["eta"])
    fit = sj.fit(law, small, x={"N": "N", "D": "D", "group": "data"}, y="loss")
    table = law.group_params(fit.params)
    assert table["eta"].nunique() == 1 and 0.1 < fit.params["eta"] < 0.15
    rel = (fit.predict(big).y.to_numpy() - big["loss"].to_numpy()) / big["loss"].to_numpy()
    # Recorded: RedPajama and RefinedWeb targets within 0.8%; C4 6.9B -3.2% (-5.2% fitted alone).
    assert np.all(np.abs(rel[big["data"].to_numpy() != "c4_original"]) < 0.01), rel
    assert abs(rel[(big["data"] == "c4_original").to_numpy() & (big["N"] > 6e9).to_numpy()][0]) < 0.04


def test_downstream_exp_links_c4_loss_to_mean_top1_error_of_the_large_models():
    need(DATA / "gadre_overtraining")
    frame = gadre_downstream_frame()
    out = []
    for _, group in frame.groupby("data"):
        small, big = group[group["N"] < 1e9], group[group["N"] > 1e9]
        fit = sj.fit("downstream_exp", small, x={"L": "loss"}, y="err")
        out.append((fit.predict(big).y.to_numpy() - big["err"].to_numpy()) / big["err"].to_numpy())
    rel = np.concatenate(out)
    assert rel.size == 9
    assert np.all(np.abs(rel) < 0.05), rel  # recorded: 0.3% to 4.2%

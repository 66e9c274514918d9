"""Extrapolation intervals, backtests on synthetic truth and on the real Chinchilla runs, information criteria."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import numpy as np
import pandas as pd
import pytest
from helpers import chinchilla_frame
from scipy.stats import norm

import scalejax as sj

X = {"N": "N", "D": "D"}
SMALL_STARTS = np.array(
    [[e, a, b, al, 0.3] for e in (1.0, 2.0) for a in (1e2, 1e3) for b in (1e2, 1e3) for al in (0.3, 0.5)]
)
TRUTH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def chinchilla_loss(p, n, d):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def synthetic(seed: int, sigma: float = 0.02) -> pd.DataFrame:
    """8 model sizes x 5 token counts drawn from TRUTH with log-normal noise."""
    n, d = np.meshgrid(np.geomspace(2e7, 3e9, 8), np.geomspace(4e8, 1e11, 5), indexing="ij")
    n, d = n.ravel(), d.ravel()
    rng = np.random.default_rng(seed)
    loss = chinchilla_loss(TRUTH, n, d) * np.exp(sigma * rng.standard_normal(n.size))
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


@pytest.fixture(scope="module")
def fit():
    return sj.fit("chinchilla", synthetic(100), x=X, y="loss", starts=SMALL_STARTS)


def test_extrapolate_fit_is_the_delta_method_with_the_residual_noise(fit):
    new = {"N": [1e9, 7e10], "D": [2e10, 1.4e12]}
    table = sj.analysis.extrapolate(fit, new, level=0.9, calibration=None)
    p = fit.params
    names = list(fit.law.param_names)
    theta = np.array([p[k] for k in names])
    z = norm.ppf(0.95)
    s2 = np.sum(fit.residuals**2) / (fit.data.n - len(names))
    for i in range(2):

        def log_y(t, i=i):
            return np.log(chinchilla_loss(dict(zip(names, t, strict=True)), new["N"][i], new["D"][i]))

        grad = np.array(
            [(log_y(theta + h) - log_y(theta - h)) / (2 * h[j]) for j, h in enumerate(np.diag(theta * 1e-6))]
        )
        sd = np.sqrt(grad @ fit.covariance().to_numpy() @ grad)
        y = np.exp(log_y(theta))
        assert table.y[i] == pytest.approx(y, rel=1e-10)
        assert np.log(table.y_hi[i] / y) == pytest.approx(z * sd, rel=1e-4)
        assert np.log(table.y_pred_hi[i] / y) == pytest.approx(z * np.sqrt(sd**2 + s2), rel=1e-4)
        assert np.log(y / table.y_pred_lo[i]) == pytest.approx(z * np.sqrt(sd**2 + s2), rel=1e-4)
    assert table.attrs["noise"] == pytest.approx(np.sqrt(s2), rel=1e-10)
    # The distance: decades of compute 6 N D beyond the largest run.
    compute = 6 * fit.data.x["N"] * fit.data.x["D"]
    expected = np.log10(6 * np.array(new["N"]) * np.array(new["D"]) / compute.max())
    np.testing.assert_allclose(table.distance, expected, rtol=1e-12)
    # A calibration adds its extra variance tau(d)^2 = (tau0 + slope d)^2 beyond the data, nothing inside.
    cal = dataclasses.replace(sj.analysis.calibrate(fit), tau0=0.01, slope=0.02, distance_scale="absolute", cv_gain=1.0)
    widened = sj.analysis.extrapolate(fit, new, level=0.9, calibration=cal)
    np.testing.assert_allclose(widened.distance, expected, rtol=1e-12)
    half = np.log(table.y_pred_hi / table.y)
    tau = np.where(expected > 0, 0.01 + 0.02 * expected, 0.0)
    np.testing.assert_allclose(np.log(widened.y_pred_hi / widened.y), np.sqrt(half**2 + (z * tau) ** 2), rtol=1e-10)
    np.testing.assert_allclose(widened.y_hi, table.y_hi, rtol=1e-12)
    assert expected[0] < 0 and widened.y_pred_hi[0] == pytest.approx(table.y_pred_hi[0], rel=1e-12)


def test_backtest_reports_both_predictive_intervals_and_their_interval_scores():
    frame = synthetic(102)
    table = sj.analysis.backtest("chinchilla", frame, x=X, y="loss", holdout=8, n_boot=0, starts=SMALL_STARTS)
    summary = table.attrs["summary"]
    for column in ("y_pred_lo", "y_pred_hi", "y_pred_lo_uncalibrated", "y_pred_hi_uncalibrated", "distance"):
        assert column in table.columns
    # The calibration is of the training runs alone: the 32 smaller by compute.
    cal = sj.analysis.calibrate("chinchilla", frame.drop(index=table.index), x=X, y="loss", starts=SMALL_STARTS)
    assert summary["calibration"] == cal.summary()
    assert (table.distance > 0).all()
    # Interval scores by hand (Gneiting & Raftery 2007, eq. 43) on log loss.
    for suffix in ("", "_uncalibrated"):
        lo, hi, y = (np.log(table[c].to_numpy()) for c in (f"y_pred_lo{suffix}", f"y_pred_hi{suffix}", "y"))
        by_hand = (hi - lo) + 40 * np.clip(lo - y, 0, None) + 40 * np.clip(y - hi, 0, None)
        np.testing.assert_allclose(table[f"score{suffix}"], by_hand, rtol=1e-12)
        assert summary[f"interval_score{suffix}"] == pytest.approx(by_hand.mean(), rel=1e-12)
        inside = (lo <= y) & (y <= hi)
        key = "coverage_pred" + suffix
        assert summary[key] == pytest.approx(inside.mean())
    # Calibration only widens.
    assert np.all(table.y_pred_lo <= table.y_pred_lo_uncalibrated * (1 + 1e-12))
    assert np.all(table.y_pred_hi >= table.y_pred_hi_uncalibrated * (1 - 1e-12))


def test_extrapolate_draws_and_compute_path():
    frame = synthetic(101)
    boot = sj.bootstrap("chinchilla", frame, x=X, y="loss", n=64, seed=0, starts=SMALL_STARTS)
    new = pd.DataFrame({"N": [1e9, 7e10], "D": [2e10, 1.4e12]})
    table = sj.analysis.extrapolate(boot, new)
    reference = boot.predict(new)
    np.testing.assert_allclose(table.y, reference.y, rtol=1e-12)
    np.testing.assert_allclose(table.y_lo, reference.lo, rtol=1e-12)
    np.testing.assert_allclose(table.y_hi, reference.hi, rtol=1e-12)
    assert np.all((table.y_pred_lo < table.y_lo) & (table.y_hi < table.y_pred_hi))
    # The noise the draws carry (a posterior's fitted scale) is used.
    # With zero noise the predictive interval is made of the draws' own predictions: each end
    # is one of the two order statistics around the 2.5% (97.5%) position of the draws.
    silent = eqx.tree_at(lambda d: d.noise, boot, {"sigma": np.zeros(boot.n_draws)})
    quiet = sj.analysis.extrapolate(silent, new)
    ordered = np.sort(boot.predict_draws(new), axis=0)
    k = int(0.025 * (len(ordered) - 1))
    for end, lo, hi in (
        (quiet.y_pred_lo, ordered[k], ordered[k + 1]),
        (quiet.y_pred_hi, ordered[-k - 2], ordered[-k - 1]),
    ):
        assert np.all((lo * (1 - 1e-12) <= end) & (end <= hi * (1 + 1e-12))), (end, lo, hi)
    # Along the compute axis: the loss at each draw's compute-optimal split.
    path = sj.analysis.extrapolate(boot, compute=[1e21, 1e23])
    co = sj.compute_optimal(boot, [1e21, 1e23])
    np.testing.assert_allclose(path.y, co.loss, rtol=1e-12)
    np.testing.assert_allclose(path.y_lo, co.loss_lo, rtol=1e-12)
    np.testing.assert_allclose(path.N, co.N, rtol=1e-12)
    with pytest.raises(sj.ScalejaxError, match="either"):
        sj.analysis.extrapolate(boot, new, compute=1e21)


@pytest.mark.slow
def test_backtest_coverage_is_near_nominal_on_synthetic_truth():
    covered, covered_plain, covered_mean, n_points = 0, 0, 0, 0
    for seed in range(6):
        frame = synthetic(seed)
        table = sj.analysis.backtest(
            "chinchilla", frame, x=X, y="loss", holdout=0.2, n_boot=64, seed=seed, starts=SMALL_STARTS
        )
        summary = table.attrs["summary"]
        assert summary["n_holdout"] == 8 and summary["n_train"] == 32
        # The held-out runs are the 8 largest by compute.
        compute = 6 * frame.N * frame.D
        assert set(table.index) == set(compute.nlargest(8).index)
        covered += table.covered_pred.sum()
        covered_plain += table.covered_pred_uncalibrated.sum()
        truth = chinchilla_loss(TRUTH, table.N, table.D)
        covered_mean += ((table.y_lo <= truth) & (truth <= table.y_hi)).sum()
        n_points += len(table)
    coverage = covered / n_points
    # 48 held-out runs (6 fits): binomial sd of the coverage is about 0.03 at 0.95.
    assert 0.85 <= coverage <= 1.0, coverage
    assert 0.85 <= covered_plain / n_points <= 1.0
    assert covered_mean / n_points >= 0.7, covered_mean / n_points


@pytest.mark.slow
def test_backtest_on_real_chinchilla_holding_out_the_highest_compute():
    frame = chinchilla_frame()
    table = sj.analysis.backtest(
        "chinchilla", frame, x=X, y="loss", holdout=0.1, n_boot=64, seed=0, starts=SMALL_STARTS
    )
    summary = table.attrs["summary"]
    assert summary["n_holdout"] == 24 and summary["n_train"] == 216
    compute = 6 * frame.N * frame.D
    assert compute[table.index].min() >= compute.drop(table.index).max()
    # The Chinchilla law forecasts the largest runs to within a few percent.
    assert summary["rmse"] < 0.03
    assert 0.0 <= summary["coverage"] <= summary["coverage_pred"] <= 1.0
    print("real Chinchilla backtest:", summary)


def test_information_criteria_follow_the_gaussian_likelihood(fit):
    ic = sj.analysis.information_criteria(fit)
    r = fit.residuals
    sigma = np.sqrt(np.mean(r**2))
    loglik = norm.logpdf(r, scale=sigma).sum()
    assert ic["loglik"] == pytest.approx(loglik, rel=1e-10)
    assert ic["aic"] == pytest.approx(2 * 6 - 2 * loglik, rel=1e-10)
    assert ic["bic"] == pytest.approx(6 * np.log(r.size) - 2 * loglik, rel=1e-10)


@pytest.mark.slow
def test_compare_laws_prefers_the_true_law():
    frame = synthetic(7, sigma=0.01)
    table = sj.analysis.compare_laws(
        ["chinchilla", "kaplan"],
        frame,
        x=X,
        y="loss",
        n_boot=0,
        starts={"chinchilla": SMALL_STARTS},
    )
    assert list(table.index) == ["chinchilla", "kaplan"]
    assert table.loc["chinchilla", "aic"] < table.loc["kaplan", "aic"]
    assert list(table.columns) == ["n_params", "rmse", "mean_abs_error", "coverage_pred", "aic", "bic", "loglik"]


def test_bad_holdout_fails_clearly(fit):
    frame = synthetic(0)
    with pytest.raises(sj.ScalejaxError, match="holdout"):
        sj.analysis.backtest("chinchilla", frame, x=X, y="loss", holdout=1.5, n_boot=0)
    with pytest.raises(sj.DataError, match="by="):
        sj.analysis.backtest("chinchilla", frame, x=X, y="loss", by="tokens", n_boot=0)

"""Bootstrap: agreement with an independent SciPy loop on the same resamples, schemes, determinism, intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED_DATA, chinchilla_arrays, chinchilla_frame, scipy_fit

import scalejax as sj
from scalejax._resample import Resampler

X = {"N": "N", "D": "D"}
# A small natural-scale start grid for tests where Hoffmann's 4,500 starts are not the point.
SMALL_STARTS = np.array(
    [
        [e, a, b, al, be]
        for e in (1.0, 2.0)
        for a in (1e2, 1e3)
        for b in (1e2, 1e3)
        for al in (0.3, 0.5)
        for be in (0.3,)
    ]
)


@pytest.fixture(scope="module")
def example():
    return sj.datasets.load_example("chinchilla")


def test_draws_agree_with_scipy_loop_on_the_same_resamples():
    frame = chinchilla_frame()
    n, seed = 24, 11
    boot = sj.bootstrap("chinchilla", frame, x=X, y="loss", n=n, seed=seed)
    assert boot.n_converged == n and boot.n_failed == 0
    # The same resamples: the scheme's weights of resamples [0, n) made from the seed.
    counts = Resampler(boot.fit.data, "rows", seed).weights(0, n)
    log_n, log_d, log_y = chinchilla_arrays(frame)
    start = np.array(
        [np.log(boot.fit.params[k]) for k in ("E", "A", "B")] + [boot.fit.params[k] for k in ("alpha", "beta")]
    )
    ours = boot.samples
    for i in range(n):
        rep = counts[i].astype(int)
        ref = scipy_fit(start[None, :], np.repeat(log_n, rep), np.repeat(log_d, rep), np.repeat(log_y, rep))
        assert boot.objective[i] <= ref.objective * (1 + 1e-7)
        for name in ("E", "alpha", "beta"):
            assert ours.loc[i, name] == pytest.approx(ref.params[name], rel=2e-3), (i, name)


def test_interval_contract_and_contains_full_fit(example):
    boot = sj.bootstrap("chinchilla", example, x=X, y="loss", n=64, seed=0, starts=SMALL_STARTS)
    interval = boot.interval(0.9)
    assert list(interval.index) == ["E", "A", "B", "alpha", "beta"]
    assert list(interval.columns) == ["lo", "hi"]
    assert list(boot.samples.columns) == ["E", "A", "B", "alpha", "beta"]
    assert len(boot.samples) == boot.n_converged == 64
    for name, row in interval.iterrows():
        assert row.lo < boot.fit.params[name] < row.hi
    wider = boot.interval(0.99)
    assert np.all(wider.lo <= interval.lo) and np.all(wider.hi >= interval.hi)
    # Percentile interval equals NumPy's quantiles of the draws.
    np.testing.assert_allclose(interval.lo, boot.samples.quantile(0.05), rtol=1e-12)
    table = boot.table()
    assert {"value", "median", "std", "lo", "hi"} <= set(table.columns)


def test_same_seed_same_draws_whatever_the_chunking(example):
    kwargs = dict(x=X, y="loss", n=40, seed=5, starts=SMALL_STARTS)
    a = sj.bootstrap("chinchilla", example, **kwargs)
    b = sj.bootstrap("chinchilla", example, lanes_per_call=16, **kwargs)
    c = sj.bootstrap("chinchilla", example, **{**kwargs, "seed": 6})
    np.testing.assert_array_equal(a.samples.to_numpy(), b.samples.to_numpy())
    assert not np.allclose(a.samples.to_numpy(), c.samples.to_numpy())


@pytest.mark.parametrize("scheme", ["bayesian", "residual"])
def test_other_schemes_give_sensible_intervals(example, scheme):
    rows = sj.bootstrap("chinchilla", example, x=X, y="loss", n=64, seed=1, starts=SMALL_STARTS)
    other = sj.bootstrap("chinchilla", example, x=X, y="loss", n=64, seed=1, scheme=scheme, starts=SMALL_STARTS)
    assert other.n_converged + other.n_failed == 64
    width = lambda b: np.log(b.interval().hi / b.interval().lo)  # noqa: E731
    ratio = (width(other) / width(rows)).loc[["E", "alpha", "beta"]]
    assert np.all((ratio > 0.3) & (ratio < 3.0)), ratio


def test_bca_follows_efron_formula():
    """`_bca` against Efron's formula written independently with scipy.stats.norm."""
    from scipy.stats import norm

    from scalejax._bootstrap import _bca

    rng = np.random.default_rng(0)
    values = rng.gamma(3.0, size=5000)
    jack = rng.normal(size=50) ** 3
    theta = 2.7
    z0 = norm.ppf(np.mean(values < theta))
    d = jack.mean() - jack
    a = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    z = norm.ppf([0.025, 0.975])
    expected = np.quantile(values, norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    np.testing.assert_allclose(_bca(values, theta, jack, 0.025, 0.975), expected, rtol=1e-10)
    # With no bias and no skew in the jackknife it is the percentile interval.
    sym = rng.normal(size=4001)
    np.testing.assert_allclose(
        _bca(sym, np.median(sym), np.linspace(-1, 1, 41), 0.05, 0.95), np.quantile(sym, [0.05, 0.95]), rtol=1e-3
    )


def test_bca_interval_on_a_fit(example):
    boot = sj.bootstrap("chinchilla", example, x=X, y="loss", n=100, seed=2, starts=SMALL_STARTS)
    bca = boot.interval(0.9, method="bca")
    assert list(bca.index) == ["E", "A", "B", "alpha", "beta"]
    assert np.all(bca.lo < bca.hi)
    for name, row in bca.iterrows():
        assert row.lo < boot.fit.params[name] < row.hi


def test_compute_optimal_split_interval_matches_closed_form(example):
    boot = sj.bootstrap("chinchilla", example, x=X, y="loss", n=64, seed=3, starts=SMALL_STARTS)
    budget = 5.76e23
    table = boot.derived_interval(lambda p: sj.analysis.chinchilla_compute_optimal(p, budget))
    p = boot.fit.params
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    n_opt = g * (budget / 6) ** (p["beta"] / (p["alpha"] + p["beta"]))
    assert table.loc["N", "value"] == pytest.approx(n_opt, rel=1e-9)
    assert table.loc["D", "value"] == pytest.approx(budget / (6 * n_opt), rel=1e-9)
    assert table.loc["N", "lo"] < n_opt < table.loc["N", "hi"]
    # The closed form is an optimum: the loss there is below neighbours on the same budget.
    for scale in (0.8, 1.25):
        n_alt = n_opt * scale
        d_alt = budget / (6 * n_alt)
        alt = p["E"] + p["A"] / n_alt ** p["alpha"] + p["B"] / d_alt ** p["beta"]
        assert table.loc["loss", "value"] < alt


def test_predict_gives_central_and_band(example):
    boot = sj.bootstrap("chinchilla", example, x=X, y="loss", n=64, seed=4, starts=SMALL_STARTS)
    new = pd.DataFrame({"N": [1e9, 7e10], "D": [2e10, 1.4e12]}, index=["small", "large"])
    pred = boot.predict(new)
    assert list(pred.columns) == ["y", "lo", "hi", "pred_lo", "pred_hi", "distance"]
    assert list(pred.index) == ["small", "large"]  # the caller's index is kept
    # Decades of compute beyond the largest run: inside the data for the small one.
    compute = 6 * example.N * example.D
    np.testing.assert_allclose(pred.distance, np.log10(6 * new.N * new.D / compute.max()), rtol=1e-12)
    assert np.all((pred.pred_lo < pred.lo) & (pred.lo < pred.y) & (pred.y < pred.hi) & (pred.hi < pred.pred_hi))
    pred = pred.reset_index(drop=True)
    # Further from the data, the band is wider (relative).
    rel = (pred.hi - pred.lo) / pred.y
    assert rel[1] > rel[0]


def test_groups_scheme_needs_groups_and_bad_arguments_fail_clearly(example):
    with pytest.raises(sj.DataError, match="group"):
        sj.bootstrap("chinchilla", example, x=X, y="loss", n=8, scheme="groups", starts=SMALL_STARTS)
    with pytest.raises(sj.ScalejaxError, match="scheme"):
        sj.bootstrap("chinchilla", example, x=X, y="loss", n=8, scheme="jackknife")
    with pytest.raises(sj.ScalejaxError, match="resamples"):
        sj.bootstrap("chinchilla", example, x=X, y="loss", n=1)


@pytest.mark.slow
def test_groups_by_run_are_wider_than_rows_on_per_checkpoint_data():
    path = SHARED_DATA / "misfitting" / "scaling_results.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared/data is absent)")
    raw = pd.read_csv(path)
    raw["run"] = raw[["model", "sweep", "peak_lr", "total_steps"]].astype(str).agg("|".join, axis=1)
    # Every 8th checkpoint of each run keeps the test small; checkpoints of a run stay correlated.
    frame = raw[raw.groupby("run").cumcount() % 8 == 0].reset_index(drop=True)
    kwargs = dict(x={"N": "N", "D": "D"}, y="loss", n=150, seed=0, group="run", starts=SMALL_STARTS)
    rows = sj.bootstrap("chinchilla", frame, scheme="rows", **kwargs)
    groups = sj.bootstrap("chinchilla", frame, scheme="groups", **kwargs)
    width = lambda b: np.log(b.interval().hi / b.interval().lo)  # noqa: E731
    ratio = width(groups) / width(rows)
    assert np.exp(np.mean(np.log(ratio))) > 1.5, ratio
    assert (ratio > 1).sum() >= 4, ratio


def test_bootstrap_of_a_fit_reuses_it_and_matches(example):
    kwargs = dict(x=X, y="loss", starts=SMALL_STARTS)
    result = sj.fit("chinchilla", example, **kwargs)
    a = sj.bootstrap(result, n=20, seed=2)
    b = sj.bootstrap("chinchilla", example, n=20, seed=2, **kwargs)
    assert a.fit is result
    np.testing.assert_array_equal(a.u, b.u)
    with pytest.raises(sj.ScalejaxError, match="leave out x"):
        sj.bootstrap(result, x=X, n=20)


def test_warm_starts_are_distinct_optima_within_the_gap(example):
    """Every warm start after the first predicts the data differently from the others, and is not far worse."""
    from scalejax._bootstrap import _warm_starts

    grid = sj.laws.get("chinchilla").start_grid()[::15]
    result = sj.fit("chinchilla", example, x=X, y="loss", starts=sj.Draws(sj.laws.get("chinchilla"), grid).samples)
    warm = _warm_starts(result, 4, gap=10.0)
    np.testing.assert_array_equal(warm[0], result.u[0])
    preds = sj.Draws(result.law, warm).predict_draws(example)
    for i in range(len(warm)):
        for j in range(i):
            assert np.max(np.abs(np.log(preds[i]) - np.log(preds[j]))) > 1e-3
    f = result.solution.objective
    objectives = [f[np.flatnonzero(np.all(result.solution.u == w, axis=1))[0]] for w in warm[1:]]
    assert all(result.objective < o <= 11 * result.objective for o in objectives)
    assert len(_warm_starts(result, 4, gap=0.0)) == 1


@sj.law(params=["a", "b"], inputs=["x"])
def straight(p, x):
    return p["a"] + p["b"] * x["x"]


def _heteroscedastic_line(n=60, seed=12):
    rng = np.random.default_rng(seed)
    x = np.linspace(1.0, 4.0, n)
    return x, 1.0 + 0.5 * x + 0.02 * (1 + x**2) * rng.standard_normal(n)


def test_wild_bootstrap_matches_the_hc2_sandwich_of_least_squares():
    """A straight line by least squares: the wild bootstrap's covariance is the HC2 sandwich (Wu 1986)."""
    x, y = _heteroscedastic_line()
    with warnings.catch_warnings():
        warnings.simplefilter("error", sj.FitWarning)  # every run is in every resample: none is under-determined
        boot = sj.bootstrap(straight, x={"x": x}, y=y, loss="squared", scheme="wild", n=4000, seed=0)
    design = np.column_stack([np.ones_like(x), x])
    bread = np.linalg.inv(design.T @ design)
    beta = bread @ design.T @ y
    r = y - design @ beta
    h = np.einsum("ij,jk,ik->i", design, bread, design)
    hc2 = bread @ design.T @ np.diag(r**2 / (1 - h)) @ design @ bread
    np.testing.assert_allclose([boot.fit.params["a"], boot.fit.params["b"]], beta, rtol=1e-8)
    np.testing.assert_allclose(boot.samples[["a", "b"]].cov().to_numpy(), hc2, rtol=0.08, atol=1e-9)
    assert boot.n_underdetermined == 0 and boot.scheme == "wild"


def test_residual_bootstrap_matches_least_squares_with_a_constant_scale():
    rng = np.random.default_rng(13)
    x = np.linspace(1.0, 4.0, 60)
    y = 1.0 + 0.5 * x + 0.05 * rng.standard_normal(60)
    boot = sj.bootstrap(straight, x={"x": x}, y=y, loss="squared", scheme="residual", n=4000, seed=1, noise="constant")
    design = np.column_stack([np.ones_like(x), x])
    bread = np.linalg.inv(design.T @ design)
    r = y - design @ (bread @ design.T @ y)
    h = np.einsum("ij,jk,ik->i", design, bread, design)
    corrected = r / np.sqrt(1 - h)
    # Residuals drawn with replacement from the leverage-corrected, centred ones: variance s^2 (X^T X)^-1.
    expected = np.mean((corrected - corrected.mean()) ** 2) * bread
    np.testing.assert_allclose(boot.samples[["a", "b"]].cov().to_numpy(), expected, rtol=0.08, atol=1e-9)
    # Each resample's own noise scale: centred on the fit's, spread as the delta method says for the
    # root mean square of n draws from the residual pool: sigma sqrt((kurtosis - 1) / (4 n)).
    sigma = boot.noise["sigma"]
    pool = corrected - corrected.mean()
    kurtosis = np.mean(pool**4) / np.mean(pool**2) ** 2
    assert np.median(sigma) == pytest.approx(boot.fit.noise["sigma"][0], rel=0.05)
    assert np.std(sigma) == pytest.approx(np.median(sigma) * np.sqrt((kurtosis - 1) / (4 * 60)), rel=0.15)
    assert list(boot.table().index) == ["a", "b", "sigma"]


def test_under_determined_resamples_are_counted_and_warned_about_with_the_fix():
    """Four runs and a three-parameter law: P(fewer than 3 distinct runs of 4 draws) = (4 + 7 * 12) / 4^4."""
    x = np.array([1.0, 2.0, 4.0, 8.0])
    y = 2.0 + 3.0 * x**-0.5 * np.array([1.01, 0.99, 1.0, 1.02])
    with pytest.warns(sj.FitWarning, match="fewer distinct runs than the law's 3 parameters") as caught:
        boot = sj.bootstrap("power", x={"x": x}, y=y, n=800, seed=2)
    message = next(str(w.message) for w in caught if "distinct runs" in str(w.message))
    assert "scheme='groups'" in message and "fixed=" in message and "add runs" in message
    assert boot.n_underdetermined / boot.n_resamples == pytest.approx(88 / 256, abs=0.05)
    assert boot.stats["n_underdetermined"] == boot.n_underdetermined
    assert any("fewer distinct runs" in w for w in boot.warnings)

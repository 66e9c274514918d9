"""Noise models (constant and log-linear scale), the residual and wild bootstrap targets, under-determined resamples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
from scipy.special import comb
from scipy.stats import norm

from scalejax import ScalejaxError
from scalejax._noise import distinct_runs, fit_noise, leverage, resample_targets, scale_key, underdetermined


def heteroscedastic(n=600, slope_per_decade=0.25, seed=0):
    """Residuals whose log scale rises linearly in log10 compute: sigma = 0.01 * 10^(slope (key - 20))."""
    rng = np.random.default_rng(seed)
    key = rng.uniform(18, 22, n)
    sigma = 0.01 * 10 ** (slope_per_decade * (key - 20))
    return sigma * rng.standard_normal(n), key, sigma


def test_constant_scale_is_the_residual_standard_deviation_with_the_parameters_counted():
    rng = np.random.default_rng(1)
    r = 0.02 * rng.standard_normal(50)
    key = np.linspace(18, 21, 50)
    w = np.r_[np.ones(45), np.zeros(5)]
    model = fit_noise(r, key, weights=w, n_params=5, kind="constant")
    assert np.exp(model.log_sigma) == pytest.approx(np.sqrt(np.sum(r[:45] ** 2) / (45 - 5)), rel=1e-12)
    assert model.slope == 0.0 and model.n_runs == 45
    np.testing.assert_allclose(model.scale([10.0, 19.0, 30.0]), np.exp(model.log_sigma), rtol=1e-12)


def test_log_linear_scale_is_the_maximum_likelihood_estimate():
    r, key, _ = heteroscedastic(n=300, seed=2)
    model = fit_noise(r, key, kind="log_linear")
    z = key - key.mean()

    def nll(c):
        log_s = c[0] + c[1] * z
        return -np.sum(norm.logpdf(r, scale=np.exp(log_s)))

    ref = scipy.optimize.minimize(
        nll, x0=[np.log(r.std()), 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}
    )
    assert model.center == pytest.approx(key.mean(), rel=1e-12)
    assert model.log_sigma == pytest.approx(ref.x[0], abs=1e-6)
    assert model.slope == pytest.approx(ref.x[1], abs=1e-6)


def test_cross_validation_picks_the_scale_the_data_were_drawn_with():
    r, key, sigma = heteroscedastic(seed=3)
    varying = fit_noise(r, key)
    assert varying.kind == "log_linear"
    # The truth: log sigma rises by 0.25 ln 10 per decade.
    assert varying.slope == pytest.approx(0.25 * np.log(10), abs=3 * np.sqrt(varying.cov[1, 1]))
    inside = (key > 18.5) & (key < 21.5)
    np.testing.assert_allclose(varying.scale(key[inside]), sigma[inside], rtol=0.15)
    rng = np.random.default_rng(4)
    flat = fit_noise(0.01 * rng.standard_normal(600), key)
    assert flat.kind == "constant"
    assert flat.scores["constant"] >= flat.scores["log_linear"]
    assert list(flat.table().index) == ["constant", "log_linear", "log_linear_tpp"]
    # A value of plain numbers: equal fits are equal and hash alike.
    again = fit_noise(0.01 * np.random.default_rng(4).standard_normal(600), key)
    assert again == flat and hash(again) == hash(flat) and again != varying


def test_scale_is_held_at_the_ends_of_the_fitted_range():
    r, key, _ = heteroscedastic(seed=5)
    model = fit_noise(r, key, kind="log_linear")
    lo, hi = model.key_range
    np.testing.assert_allclose(model.scale([lo - 3, lo, hi, hi + 3]), model.scale([lo, lo, hi, hi]), rtol=1e-14)
    x = {"N": np.array([1e9]), "D": np.array([10**25 / 6e9])}
    assert model.sigma(x)[0] == pytest.approx(float(model.scale(hi)), rel=1e-14)
    assert scale_key(x, "compute")[0] == pytest.approx(25.0, abs=1e-12)


def test_small_data_keep_a_constant_scale_and_bad_input_is_one_clear_error():
    r, key, _ = heteroscedastic(n=15, seed=6)
    assert fit_noise(r, key).kind == "constant"
    with pytest.raises(ScalejaxError, match="degrees of freedom"):
        fit_noise(r[:4], key[:4], n_params=4)
    with pytest.raises(ScalejaxError, match="every residual is zero"):
        fit_noise(np.zeros(30), key[:15].repeat(2))
    with pytest.raises(ScalejaxError, match="unknown noise kind"):
        fit_noise(r, key, kind="quadratic")
    with pytest.raises(ScalejaxError, match="positive"):
        scale_key({"x": np.array([1.0, -2.0])}, "x")


def test_noise_draws_follow_the_estimate_and_its_covariance():
    r, key, _ = heteroscedastic(seed=7)
    model = fit_noise(r, key, kind="log_linear")
    draws = model.draws(20000, seed=1)
    assert np.mean(np.log(draws["sigma"])) == pytest.approx(model.log_sigma, abs=4 * np.sqrt(model.cov[0, 0] / 20000))
    assert np.std(draws["sigma_slope"]) == pytest.approx(np.sqrt(model.cov[1, 1]), rel=0.03)
    # Per-draw scales at points: each draw's own line in the key, held at the ends of the range.
    x = {"N": np.array([1e9, 1e9]), "D": np.array([10**19 / 6e9, 10**30 / 6e9])}
    per_draw = model.sigma_draws(draws, x)
    key = np.clip([19.0, 30.0], *model.key_range)
    expected = draws["sigma"][:, None] * np.exp(draws["sigma_slope"][:, None] * (key[None, :] - model.center))
    np.testing.assert_allclose(per_draw, expected, rtol=1e-12)
    assert np.median(per_draw[:, 0]) == pytest.approx(model.scale(19.0), rel=0.01)


def test_leverage_is_the_hat_matrix_diagonal_of_linear_least_squares():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((30, 3))
    w = rng.uniform(0.5, 2.0, 30)
    xw = x * np.sqrt(w)[:, None]
    hat = xw @ np.linalg.inv(xw.T @ xw) @ xw.T
    np.testing.assert_allclose(leverage(x, w), np.diag(hat), rtol=1e-10)
    assert leverage(x, w).sum() == pytest.approx(3.0, rel=1e-10)


def test_wild_targets_keep_each_runs_corrected_residual_up_to_sign():
    rng = np.random.default_rng(9)
    fitted = rng.uniform(0.5, 1.5, 12)
    r = 0.01 * rng.standard_normal(12)
    h = rng.uniform(0.0, 0.5, 12)
    w = np.r_[np.ones(10), 0.0, 0.0]
    t = resample_targets(fitted, r, w, 4000, "wild", np.random.default_rng(0), leverage=h)
    dev = t - fitted
    np.testing.assert_allclose(
        np.abs(dev[:, :10]), np.broadcast_to(np.abs(r[:10]) / np.sqrt(1 - h[:10]), (4000, 10)), rtol=1e-12
    )
    assert np.all(dev[:, 10:] == 0)
    signs = np.sign(dev[:, :10]) * np.sign(r[:10])
    assert abs(signs.mean()) < 0.03


def test_mammen_multipliers_have_mean_zero_and_unit_second_and_third_moments():
    t = resample_targets(
        np.zeros(1), np.ones(1), np.ones(1), 400_000, "wild", np.random.default_rng(1), multipliers="mammen"
    )
    v = t[:, 0]
    root5 = math.sqrt(5)
    assert set(np.round(np.unique(v), 12)) == {round(-(root5 - 1) / 2, 12), round((root5 + 1) / 2, 12)}
    assert v.mean() == pytest.approx(0.0, abs=0.01)
    assert (v**2).mean() == pytest.approx(1.0, abs=0.01)
    assert (v**3).mean() == pytest.approx(1.0, abs=0.03)


def test_residual_targets_draw_standardised_residuals_and_rescale_them():
    rng = np.random.default_rng(10)
    fitted = np.zeros(8)
    scale = np.array([1, 1, 1, 1, 2, 2, 2, 2], dtype=float) * 0.01
    r = scale * rng.standard_normal(8)
    t = resample_targets(fitted, r, np.ones(8), 500, "residual", np.random.default_rng(2), scale=scale)
    standard = r / scale - np.mean(r / scale)
    picked = t / scale
    assert np.all(np.min(np.abs(picked[..., None] - standard[None, None, :]), axis=-1) < 1e-12)
    # Constant scale and no leverage: the classical scheme, centred.
    t = resample_targets(fitted, r, np.ones(8), 50, "residual", np.random.default_rng(3))
    assert np.all(np.min(np.abs(t[..., None] - (r - r.mean())[None, None, :]), axis=-1) < 1e-15)
    with pytest.raises(ScalejaxError, match="'residual' and 'wild'"):
        resample_targets(fitted, r, np.ones(8), 5, "rows", np.random.default_rng(0))


def test_distinct_runs_count_points_or_groups_with_positive_weight():
    w = np.array([[2.0, 0, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 6]])
    np.testing.assert_array_equal(distinct_runs(w), [2, 6, 1])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    np.testing.assert_array_equal(distinct_runs(w, groups), [2, 3, 1])
    out = underdetermined(w, 3, groups=groups)
    assert out["n_underdetermined"] == 2 and out["mask"].tolist() == [True, False, True]
    assert "groups" in out["message"] and "fix" in out["message"]
    assert underdetermined(w[1:2], 3)["message"] is None


def test_rows_bootstrap_of_five_runs_is_under_determined_as_often_as_combinatorics_says():
    """Five runs and four parameters (Gadre et al.'s small fit): P(fewer than 4 distinct of 5 draws) = 1805/3125."""
    from scalejax._bootstrap import resample_weights
    from scalejax._data import Data

    data = Data.from_arrays({"x": np.arange(1.0, 6.0)}, np.arange(1.0, 6.0))
    weights = resample_weights(data, 20000, "rows", np.random.default_rng(0))
    # Stirling numbers of the second kind S(5, k) times falling factorials 5!/(5-k)! over 5^5.
    stirling = {1: 1, 2: 15, 3: 25}
    exact = sum(s * comb(5, k, exact=True) * math.factorial(k) for k, s in stirling.items()) / 5**5
    assert exact == pytest.approx(0.5776)
    assert underdetermined(weights, 4)["fraction"] == pytest.approx(exact, abs=0.012)


def test_a_scale_varying_with_tokens_per_parameter_is_chosen_and_is_the_maximum_likelihood_estimate():
    """Scatter that grows at few tokens per parameter (as Hoffmann et al.'s runs show) picks `log_linear_tpp`."""
    from scalejax._noise import noise_draws, noise_features

    rng = np.random.default_rng(11)
    n = 400
    key = rng.uniform(18, 22, n)
    tpp = rng.uniform(-0.5, 2.5, n)
    sigma = 0.01 * 10 ** (-0.3 * (tpp - 1.0))
    r = sigma * rng.standard_normal(n)
    model = fit_noise(r, key, tokens_per_param=tpp)
    assert model.kind == "log_linear_tpp"
    assert model.scores["log_linear_tpp"] > max(model.scores["constant"], model.scores["log_linear"])
    zk, zt = key - key.mean(), tpp - tpp.mean()

    def nll(c):
        return -np.sum(norm.logpdf(r, scale=np.exp(c[0] + c[1] * zk + c[2] * zt)))

    ref = scipy.optimize.minimize(
        nll,
        x0=[np.log(r.std()), 0.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000},
    )
    np.testing.assert_allclose(model.coef, ref.x, atol=1e-5)
    # The truth: log sigma falls by 0.3 ln 10 per decade of tokens per parameter, and not with compute.
    assert model.coef[2] == pytest.approx(-0.3 * np.log(10), abs=3 * np.sqrt(model.cov[2, 2]))
    assert abs(model.coef[1]) < 3 * np.sqrt(model.cov[1, 1])
    # At points: N and D give the covariates (compute 6 N D and D / N), held in the fitted range.
    x = {"N": np.array([1e9, 1e9]), "D": np.array([1e9, 1e11])}
    features = noise_features(x, "compute")
    np.testing.assert_allclose(features["tokens_per_param"], [0.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(model.sigma(x), model.scale(features["key"], features["tokens_per_param"]), rtol=1e-12)
    # Many residual vectors at once (a bootstrap's resamples): each row's own maximum-likelihood fit.
    weights = rng.integers(0, 3, (3, n)).astype(float)
    batch = noise_draws(model, np.stack([r, 2 * r, r[::-1]]), weights, {"key": key, "tokens_per_param": tpp}, 0)
    for i, (rows_r, w) in enumerate(zip(np.stack([r, 2 * r, r[::-1]]), weights, strict=True)):
        one = fit_noise(rows_r, key, tokens_per_param=tpp, weights=w, kind="log_linear_tpp")
        # Same covariates, centred as in `model`: the slopes agree, the scale is moved to model's centres.
        assert batch["sigma_slope"][i] == pytest.approx(one.coef[1], abs=1e-8)
        assert batch["sigma_slope_tpp"][i] == pytest.approx(one.coef[2], abs=1e-8)
        shift = one.coef[1] * (model.centers[0] - one.centers[0]) + one.coef[2] * (model.centers[1] - one.centers[1])
        assert np.log(batch["sigma"][i]) == pytest.approx(one.coef[0] + shift, abs=1e-8)

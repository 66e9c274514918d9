"""Posteriors: closed-form conjugate reference, simulation-based calibration, real Chinchilla data, groups, errors."""

from __future__ import annotations

import json
import warnings

import jax
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
import scipy.integrate
import scipy.stats
from helpers import chinchilla_frame

import scalejax as sj
from scalejax.bayes import prior_of
from scalejax.cli import main

X = {"x": "x"}
# One NUTS setting for most tests: with sequential chains, a layout compiles once whatever the chain count.
DRAWS = 500
XS = np.geomspace(1.0, 1e3, 12)


def _powerlaw_frame(a, alpha, sigma, rng, xs=XS):
    y = a * xs**-alpha * np.exp(sigma * rng.standard_normal(xs.size))
    return pd.DataFrame({"x": xs, "y": y})


@pytest.mark.parametrize(
    "param",
    [
        sj.Param("a", grid=(-1.0, 3.0)),
        sj.Param("b", lower=0, grid=(1.0, 100.0)),
        sj.Param("c", lower=2.0),
        sj.Param("d", upper=1.0, grid=(0.5,)),
        sj.Param("e", lower=0.0, upper=1.0),
        sj.Param("f", lower=0, prior=dist.Gamma(2.0, 3.0)),
        sj.Param("g", lower=-1.0, upper=4.0, prior=dist.Beta(2.0, 5.0)),  # support (0, 1) truncates (-1, 4)
    ],
)
def test_prior_density_in_unconstrained_space_integrates_to_one(param):
    """The prior plus the transform's log-Jacobian is a density in u (checked by SciPy quadrature)."""
    from scalejax.bayes._priors import log_prior_u as _log_prior_u

    prior = prior_of(param)
    with jax.enable_x64(True):
        u = np.linspace(-60, 60, 400_001)
        density = np.exp(np.asarray(_log_prior_u(param, prior, jax.numpy.asarray(u))))
    # (For g the Beta prior's support (0, 1) lies inside the bounds, so all its mass is kept.)
    assert scipy.integrate.trapezoid(density, u) == pytest.approx(1.0, abs=1e-6)
    if param.prior is None and param.transform == "interval":
        assert isinstance(prior, dist.Uniform)


def test_a_malformed_declared_prior_is_refused():
    bad = sj.Param("alpha", prior="normal")
    with pytest.raises(sj.LawError, match="scalar numpyro distribution"):
        prior_of(bad)


def test_gaussian_posterior_matches_conjugate_closed_form():
    """log y = log A - alpha log x + N(0, s^2) with Normal priors on (log A, alpha) and s pinned is conjugate."""
    rng = np.random.default_rng(3)
    s = 0.2
    frame = _powerlaw_frame(5.0, 0.4, s, rng)
    priors = {
        "A": dist.LogNormal(1.0, 2.0),
        "alpha": dist.Normal(0.2, 0.3),
        "sigma": dist.LogNormal(np.log(s), 1e-4),
    }
    # Closed form: posterior precision = prior precision + X^T X / s^2.
    design = np.column_stack([np.ones(XS.size), -np.log(XS)])
    prior_mean, prior_prec = np.array([1.0, 0.2]), np.diag([1 / 2.0**2, 1 / 0.3**2])
    prec = prior_prec + design.T @ design / s**2
    cov = np.linalg.inv(prec)
    mean = cov @ (prior_prec @ prior_mean + design.T @ np.log(frame.y.to_numpy()) / s**2)
    sd = np.sqrt(np.diag(cov))

    post = sj.posterior("powerlaw", frame, x=X, y="y", likelihood="gaussian", priors=priors, draws=DRAWS, seed=1)
    assert post.diagnostics["divergences"] == 0 and post.diagnostics["rhat_max"] < 1.01
    assert post.diagnostics["ess_min"] > 1500
    draws = np.column_stack([np.log(post.samples.A), post.samples.alpha])
    # Monte Carlo error of a mean is sd / sqrt(ESS) (ESS > 1500 here): 0.1 sd is about 4 standard errors.
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.1 * sd.min())
    np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.07)
    assert np.corrcoef(draws.T)[0, 1] == pytest.approx(cov[0, 1] / (sd[0] * sd[1]), abs=0.03)

    # The Laplace approximation is exact for this Gaussian posterior.
    lap = sj.posterior(
        "powerlaw", frame, x=X, y="y", likelihood="gaussian", priors=priors, method="laplace", draws=5000, seed=1
    )
    lap_draws = np.column_stack([np.log(lap.samples.A), lap.samples.alpha])
    np.testing.assert_allclose(lap_draws.mean(axis=0), mean, atol=0.05 * sd.min())
    np.testing.assert_allclose(lap_draws.std(axis=0), sd, rtol=0.04)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scalejax.PosteriorWarning")
def test_simulation_based_calibration_on_a_power_law():
    """Talts et al. 2018: with truths drawn from the prior, the truth's rank among the draws is uniform.

    100 replicates x 3 quantities (A, alpha, sigma): 300 ranks and 300 90% intervals. For a correct
    sampler the pooled coverage has standard error 1.7%, so the 85-95% band is 2.9 standard errors wide
    (this seed gives 88.3%; 60 replicates gave 86.7%, too near the edge).
    Ranks use every 5th of 500 draws (99 draws), so autocorrelation does not bias them.
    """
    law = sj.laws.get("powerlaw")
    rng = np.random.default_rng(2024)
    key = jax.random.PRNGKey(2024)
    n_reps, n_draws = 100, 99
    names = ("A", "alpha", "sigma")
    priors = {**{p.name: prior_of(p) for p in law.params}, "sigma": prior_of(sj.bayes.NOISE_PARAMS["sigma"])}
    ranks, covered = [], []
    for rep in range(n_reps):
        key, *keys = jax.random.split(key, 4)
        with jax.enable_x64(True):
            truth = {k: float(priors[k].sample(kk)) for k, kk in zip(names, keys, strict=True)}
        frame = _powerlaw_frame(truth["A"], truth["alpha"], truth["sigma"], rng)
        post = sj.posterior(law, frame, x=X, y="y", likelihood="gaussian", chains=1, draws=DRAWS, seed=rep)
        values = {**post.samples, "sigma": post.noise["sigma"]}
        for name in names:
            v = np.asarray(values[name])[5::5]
            assert v.size == n_draws
            ranks.append(int(np.sum(v < truth[name])))
            lo, hi = np.quantile(v, [0.05, 0.95])
            covered.append(lo <= truth[name] <= hi)
    ranks = np.array(ranks).reshape(n_reps, 3)
    # Rank of the truth among 99 draws takes 100 values; 5 bins of 20 ranks, 60 expected per bin pooled.
    counts = np.array([np.bincount(ranks[:, j] // 20, minlength=5) for j in range(3)])
    assert scipy.stats.chisquare(counts.sum(axis=0)).pvalue > 0.01, counts
    for j in range(3):
        assert scipy.stats.chisquare(counts[j]).pvalue > 0.001, (names[j], counts[j])
    coverage = float(np.mean(covered))
    assert 0.85 <= coverage <= 0.95, coverage


@pytest.mark.slow
def test_chinchilla_real_data_converges_near_the_huber_fit():
    frame = chinchilla_frame()
    # A constant scale: the likelihood whose mode the Huber fit approximates.
    post = sj.posterior(
        "chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", chains=4, draws=1000, seed=0, noise="constant"
    )
    d = post.diagnostics
    assert d["rhat_max"] <= 1.01, d["rhat"]
    assert d["divergences"] == 0
    assert d["ess_min"] > 1000
    table = post.table()
    for name, value in post.fit.params.items():
        # The posterior median sits within one posterior sd of the robust point fit.
        assert abs(table.loc[name, "median"] - value) < table.loc[name, "sd"], (name, value, table.loc[name])
    interval = post.interval(0.95)
    assert list(interval.index) == ["E", "A", "B", "alpha", "beta"] and list(interval.columns) == ["lo", "hi"]
    # Draws interface: analyses written for one parameter set work on the posterior.
    split = post.map(lambda p: sj.analysis.chinchilla_compute_optimal(p, 5.76e23))
    assert split["N"].shape == (4000,) and np.all(split["N"] > 0)
    pred = post.predict({"N": [70e9], "D": [1.4e12]}, level=0.9)
    assert pred.lo[0] < pred.y[0] < pred.hi[0]
    # By default the data choose the scale: on these runs it grows towards few tokens per parameter
    # (the Huber fit's residuals scatter 3x more below 1.4 tokens per parameter than above).
    r = post.fit.residuals
    ratio = frame.D.to_numpy() / frame.N.to_numpy()
    assert np.std(r[ratio < 1.4]) > 2 * np.std(r[ratio >= 1.4])
    auto = sj.posterior("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", method="laplace", draws=2000, seed=0)
    assert auto.noise_model.kind == "log_linear_tpp"
    slopes = auto.table().loc["sigma_slope_tpp"]
    assert slopes.hi < 0  # sigma falls with tokens per parameter
    few, many = auto.noise_scale({"N": [1e10, 1e9], "D": [1e10, 1e11]}).mean(axis=0)
    assert few > 2 * many


def _groups_frame(rng, alpha=0.45, a_values=(3.0, 8.0, 20.0), sigma=0.08):
    frames = []
    for g, a in enumerate(a_values):
        f = _powerlaw_frame(a, alpha, sigma, rng, xs=np.geomspace(1.0, 100.0, 8))
        f["dataset"] = f"d{g}"
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def test_shared_exponent_across_groups_is_recovered_and_narrower_than_separate_fits():
    rng = np.random.default_rng(7)
    frame = _groups_frame(rng)
    kwargs = dict(x=X, y="y", likelihood="gaussian", chains=2, draws=DRAWS, seed=0)
    joint = sj.posterior("powerlaw", frame, group="dataset", shared=["alpha"], **kwargs)
    assert joint.diagnostics["divergences"] == 0 and joint.diagnostics["rhat_max"] < 1.02
    assert list(joint.samples.columns) == ["A_d0", "A_d1", "A_d2", "alpha"]
    joint_iv = joint.interval(0.9).loc["alpha"]
    assert joint_iv.lo < 0.45 < joint_iv.hi
    widths = []
    for label, part in frame.groupby("dataset"):
        alone = sj.posterior("powerlaw", part.drop(columns="dataset"), **kwargs)
        widths.append(alone.interval(0.9).loc["alpha", "hi"] - alone.interval(0.9).loc["alpha", "lo"])
        # Each group's coefficient agrees with that group's own least-squares fit (log scale).
        own = sj.fit("powerlaw", part, x=X, y="y", loss="squared_log").params["A"]
        a = joint.group(label).samples.A
        assert abs(np.log(a.median() / own)) < 2 * np.log(a).std(), (label, a.median(), own)
    assert joint_iv.hi - joint_iv.lo < 0.8 * min(widths), (joint_iv, widths)
    # A group's posterior has the Draws interface.
    pred = joint.group("d1").predict({"x": [10.0, 1000.0]})
    assert np.all(pred.lo < pred.y) and np.all(pred.y < pred.hi)
    with pytest.raises(sj.ScalejaxError, match="group"):
        joint.predict({"x": [10.0]})


# Three groups identify a spread only weakly (a funnel): a stray divergence or R-hat of 1.02 on tau is expected.
@pytest.mark.filterwarnings("ignore::scalejax.PosteriorWarning")
def test_partially_pooled_coefficient():
    rng = np.random.default_rng(8)
    frame = _groups_frame(rng, a_values=(4.0, 5.0, 6.0))
    post = sj.posterior(
        "powerlaw",
        frame,
        x=X,
        y="y",
        likelihood="gaussian",
        group="dataset",
        shared=["alpha"],
        pooled=["A"],
        chains=2,
        draws=DRAWS,
        target_accept=0.95,
        seed=0,
    )
    table = post.table(0.9)
    assert {"A_mu", "tau_A", "A_d0", "alpha", "sigma"} <= set(table.index)
    assert table.loc["alpha", "lo"] < 0.45 < table.loc["alpha", "hi"]
    assert table.loc["A_mu", "lo"] < 5.0 < table.loc["A_mu", "hi"]
    assert post.diagnostics["rhat_max"] < 1.05


def test_prior_override_by_name_moves_the_posterior():
    rng = np.random.default_rng(5)
    frame = _powerlaw_frame(5.0, 0.4, 0.1, rng)
    free = sj.posterior("powerlaw", frame, x=X, y="y", method="laplace", draws=2000)
    pinned = sj.posterior(
        "powerlaw", frame, x=X, y="y", method="laplace", draws=2000, priors={"alpha": dist.Normal(0.3, 0.002)}
    )
    assert abs(free.samples.alpha.median() - 0.4) < 0.05
    assert pinned.samples.alpha.median() == pytest.approx(0.3, abs=0.003)
    assert pinned.samples.alpha.std() < 0.003


def test_binomial_accuracy_with_guessing_floor_recovers_truth():
    @sj.law(params=[sj.Param("c", lower=0, grid=(1.0, 100.0)), sj.Param("k", lower=0, grid=(0.5, 2.0))], inputs=["x"])
    def skill(p, x):
        return x["x"] ** p["k"] / (x["x"] ** p["k"] + p["c"])

    rng = np.random.default_rng(11)
    xs = np.geomspace(0.1, 1000.0, 15)
    truth = {"c": 20.0, "k": 0.8}
    q = xs ** truth["k"] / (xs ** truth["k"] + truth["c"])
    trials = 400
    correct = rng.binomial(trials, 0.25 + 0.75 * q)
    frame = pd.DataFrame({"x": xs, "correct": correct, "n": trials})
    post = sj.posterior(
        skill, frame, x=X, y="correct", likelihood="binomial", trials="n", floor=0.25, chains=2, draws=500
    )
    iv = post.interval(0.95)
    for name, value in truth.items():
        assert iv.loc[name, "lo"] < value < iv.loc[name, "hi"]
    prob = post.predict({"x": [1e4]})  # success probability, no trials given
    assert 0.25 < prob.lo[0] < prob.hi[0] < 1.0
    assert np.isnan(prob.pred_lo[0])  # no predictive interval of a count without trials
    frac = post.predict({"x": [1e4]}, trials=50)
    assert frac.pred_hi[0] - frac.pred_lo[0] > prob.hi[0] - prob.lo[0]
    # Binomial data: the beta-binomial's concentration kappa has no upper limit in the likelihood.
    bb = sj.posterior(
        skill, frame, x=X, y="correct", likelihood="beta_binomial", trials="n", floor=0.25, chains=2, draws=DRAWS
    )
    assert bb.diagnostics["divergences"] == 0 and bb.diagnostics["rhat_max"] < 1.02
    assert "kappa" in bb.noise and np.median(bb.noise["kappa"]) > 50
    assert bb.interval(0.95).loc["k", "lo"] < truth["k"] < bb.interval(0.95).loc["k", "hi"]


def test_beta_binomial_log_pmf_matches_scipy():
    from scalejax.bayes._likelihoods import beta_binomial_log_pmf as _beta_binomial_log_pmf

    k, n = np.array([0.0, 3.0, 17.0, 40.0]), np.array([40.0, 10.0, 50.0, 40.0])
    a, b = np.array([0.3, 2.0, 15.0, 4.0]), np.array([1.5, 7.0, 30.0, 0.2])
    with jax.enable_x64(True):
        ours = np.asarray(_beta_binomial_log_pmf(k, n, a, b))
    np.testing.assert_allclose(ours, scipy.stats.betabinom.logpmf(k, n, a, b), rtol=1e-10)


def test_predictive_band_includes_the_noise():
    rng = np.random.default_rng(4)
    frame = _powerlaw_frame(5.0, 0.4, 0.1, rng)
    post = sj.posterior("powerlaw", frame, x=X, y="y", likelihood="gaussian", method="laplace", draws=4000)
    pred = post.predict({"x": [30.0]}, level=0.9)
    sigma = np.median(post.noise["sigma"])
    # In log space the 90% predictive band is about 2 x 1.645 x sigma wide (sigma dominates parameter error here).
    width = np.log(pred.pred_hi[0] / pred.pred_lo[0])
    assert 2 * 1.645 * sigma * 0.95 < width < 2 * 1.645 * sigma * 1.3
    assert np.log(pred.hi[0] / pred.lo[0]) < 0.5 * width


def test_poor_sampling_is_warned_about():
    from scalejax.bayes._posterior import _warn_if_poor

    good = {"rhat_max": 1.003, "rhat": {"A": 1.003}, "ess_min": 900.0, "ess": {"A": 900.0}, "divergences": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_poor(good, chains=4)
    for bad, match in (
        ({"rhat_max": 1.02, "rhat": {"A": 1.02}}, r"R-hat 1.020 > 1.01 \(for A\)"),
        ({"ess_min": 150.0, "ess": {"A": 150.0}}, "effective sample size 150 < 400"),
        ({"divergences": 3}, "3 divergent"),
    ):
        with pytest.warns(sj.PosteriorWarning, match=match):
            _warn_if_poor({**good, **bad}, chains=4)


def test_bad_inputs_fail_with_one_clear_error():
    rng = np.random.default_rng(1)
    frame = _powerlaw_frame(5.0, 0.4, 0.1, rng)
    frame["dataset"] = ["a"] * 6 + ["b"] * 6
    frame["one"] = "a"
    run = lambda **kw: sj.posterior("powerlaw", frame, x=X, y="y", method="laplace", **kw)  # noqa: E731
    with pytest.raises(sj.ScalejaxError, match="unknown likelihood"):
        run(likelihood="cauchy")
    with pytest.raises(sj.LawError, match=r"'gamma'.*A, alpha, sigma, nu"):
        run(priors={"gamma": dist.Normal(0, 1)})
    with pytest.raises(sj.LawError, match="scalar numpyro distribution"):
        run(priors={"alpha": 0.3})
    with pytest.raises(sj.DataError, match="need group="):
        run(shared=["alpha"])
    with pytest.raises(sj.LawError, match="not parameters"):
        run(group="dataset", shared=["beta"])
    with pytest.raises(sj.DataError, match="single group"):
        run(group="one")
    with pytest.raises(sj.DataError, match="trials="):
        run(likelihood="binomial")
    with pytest.raises(sj.ScalejaxError, match="draws"):
        run(draws=3)
    counts = frame.assign(k=np.arange(12) * 10, n=50)
    with pytest.raises(sj.DataError, match="whole counts between 0 and trials"):
        sj.posterior("powerlaw", counts, x=X, y="k", likelihood="binomial", trials="n", method="laplace")
    with pytest.raises(sj.ScalejaxError, match="binomial"):
        run(floor=0.25)


def test_cli_posterior_adds_intervals_and_diagnostics(tmp_path):
    rng = np.random.default_rng(9)
    csv = tmp_path / "runs.csv"
    _powerlaw_frame(5.0, 0.4, 0.1, rng).to_csv(csv, index=False)
    out = tmp_path / "fit.json"
    status = main(["fit", str(csv), "--law", "powerlaw", "--x", "x=x", "--y", "y", "--posterior", "--json", str(out)])
    assert status == 0
    payload = json.loads(out.read_text())
    post = payload["posterior"]
    assert set(post["intervals"]) == {"A", "alpha", "sigma", "nu"}
    assert post["intervals"]["alpha"][0] < payload["params"]["alpha"] < post["intervals"]["alpha"][1]
    assert post["diagnostics"]["divergences"] == 0 and post["diagnostics"]["rhat_max"] < 1.01
    # A posterior starts from the Huber fit: another loss is a usage error (exit 2, one line).
    status = main(["fit", str(csv), "--law", "powerlaw", "--x", "x=x", "--y", "y", "--posterior", "--loss", "squared"])
    assert status == 2

"""Posteriors in ArviZ: every group real ArviZ needs (LOO, WAIC, compare, PPC and energy plots, summary), netCDF,
rank-normalised diagnostics against ArviZ's, and law comparison by PSIS-LOO."""

from __future__ import annotations

import sys
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import scipy.stats

import scalejax as sj
from scalejax.bayes._diagnostics import ess_bulk, ess_tail, rhat

az = pytest.importorskip("arviz")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

XD = {"N": "N", "D": "D"}
SMALL = dict(chains=2, draws=300, warn=False, seed=0)


@pytest.fixture(scope="module")
def example():
    return sj.datasets.load_example("chinchilla")


@pytest.fixture(scope="module")
def chinchilla_post(example):
    return sj.posterior("chinchilla", example, x=XD, y="loss", **SMALL)


@pytest.fixture(scope="module")
def kaplan_post(example):
    return sj.posterior("kaplan", example, x=XD, y="loss", **SMALL)


def test_every_group_is_there_and_arviz_works_on_it(chinchilla_post, kaplan_post):
    idata = chinchilla_post.to_arviz()
    for group in ("posterior", "log_likelihood", "posterior_predictive", "observed_data", "constant_data"):
        assert group in idata.groups(), group
    assert set(idata.sample_stats.data_vars) >= {
        "lp",
        "energy",
        "tree_depth",
        "n_steps",
        "step_size",
        "acceptance_rate",
        "diverging",
    }
    assert idata.posterior["alpha"].shape == (2, 300)
    assert idata.log_likelihood["y"].shape == (2, 300, 81)
    np.testing.assert_array_equal(idata.observed_data["y"], chinchilla_post.data.y)
    np.testing.assert_array_equal(idata.constant_data["N"], chinchilla_post.data.x["N"])
    # The draws in ArviZ are the posterior's, chain by chain.
    np.testing.assert_array_equal(idata.posterior["alpha"].to_numpy().reshape(-1), chinchilla_post.samples.alpha)

    summary = az.summary(idata, var_names=["E", "alpha", "sigma"])
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(summary.columns)
    # Our diagnostics are ArviZ's (rank-normalised R-hat, bulk and tail ESS).
    for name in ("E", "alpha", "sigma"):
        assert chinchilla_post.diagnostics["rhat"][name] == pytest.approx(float(az.rhat(idata)[name]), rel=1e-9)
        assert chinchilla_post.diagnostics["ess"][name] == pytest.approx(float(az.ess(idata)[name]), rel=1e-9)
        tail = float(az.ess(idata, method="tail")[name])
        assert chinchilla_post.diagnostics["ess_tail"][name] == pytest.approx(tail, rel=1e-9)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # WAIC's variance caveat
        loo = az.loo(idata, pointwise=True)
        waic = az.waic(idata)
    assert np.isfinite(loo.elpd_loo) and np.isfinite(waic.elpd_waic)
    assert loo.pareto_k.shape == (81,)
    # On 81 runs drawn from the Chinchilla law, Chinchilla predicts held-out runs far better than Kaplan's law.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare({"chinchilla": idata, "kaplan": kaplan_post.to_arviz()})
    assert list(table.index) == ["chinchilla", "kaplan"]
    assert table.loc["kaplan", "elpd_diff"] > 4 * table.loc["kaplan", "dse"]

    az.plot_ppc(idata, num_pp_samples=20)
    az.plot_energy(idata)
    plt.close("all")


def test_pointwise_log_likelihood_is_the_student_t_density_of_log_residuals(chinchilla_post):
    """Independent reference: SciPy's Student-t log density of each run's log residual at each draw."""
    post = chinchilla_post
    ll = post.log_likelihood()
    rows = [0, 137, 599]
    samples = post.samples.iloc[rows]
    n, d, y = (post.data.x["N"], post.data.x["D"], post.data.y)
    for k, (_, p) in zip(rows, samples.iterrows(), strict=True):
        pred = p.E + p.A / n**p.alpha + p.B / d**p.beta
        expected = scipy.stats.t.logpdf(np.log(y) - np.log(pred), df=post.noise["nu"][k], scale=post.noise["sigma"][k])
        np.testing.assert_allclose(ll.reshape(-1, 81)[k], expected, rtol=1e-10)
    # The terms add up to the log-likelihood: posterior predictive and LOO see the data the sampler saw.
    assert ll.shape == (2, 300, 81)


def test_groups_are_one_variable_with_a_group_dimension():
    rng = np.random.default_rng(7)
    frames = []
    for g, a in enumerate((3.0, 8.0, 20.0)):
        xs = np.geomspace(1.0, 100.0, 8)
        frames.append(
            pd.DataFrame({"x": xs, "y": a * xs**-0.45 * np.exp(0.08 * rng.standard_normal(8)), "set": f"d{g}"})
        )
    frame = pd.concat(frames, ignore_index=True)
    post = sj.posterior(
        "powerlaw", frame, x={"x": "x"}, y="y", group="set", shared=["alpha"], method="laplace", draws=200
    )
    idata = post.to_arviz()
    assert idata.posterior["A"].dims == ("chain", "draw", "group")
    assert list(idata.posterior["group"].to_numpy()) == ["d0", "d1", "d2"]
    assert idata.posterior["alpha"].dims == ("chain", "draw")
    np.testing.assert_array_equal(idata.posterior["A"].sel(group="d1").to_numpy().reshape(-1), post.samples["A_d1"])
    assert list(idata.constant_data["group"].to_numpy()[:9]) == ["d0"] * 8 + ["d1"]
    assert idata.log_likelihood["y"].shape == (4, 200, 24)
    # A Laplace approximation has no sampler statistics beyond the (absent) divergences.
    assert list(idata.sample_stats.data_vars) == ["diverging"]


def test_count_posterior_keeps_its_trials_through_save_and_arviz(tmp_path):
    x = np.geomspace(1.0, 1e3, 10)
    trials = np.full(10, 200)
    correct = np.random.default_rng(2).binomial(trials, np.clip(0.9 * x**-0.3, 0, 1))
    frame = pd.DataFrame({"x": x, "k": correct, "n": trials})
    post = sj.posterior("powerlaw", frame, x={"x": "x"}, y="k", likelihood="binomial", trials="n", method="laplace")
    idata = post.to_arviz()
    np.testing.assert_array_equal(idata.constant_data["trials"], trials)
    ppc = idata.posterior_predictive["y"].to_numpy()
    assert np.all(ppc == np.round(ppc)) and np.all((ppc >= 0) & (ppc <= 200))
    # Binomial log pmf by SciPy at one draw.
    p = post.samples.iloc[5]
    expected = scipy.stats.binom.logpmf(correct, trials, np.clip(p.A * x**-p.alpha, 0, 1))
    np.testing.assert_allclose(post.log_likelihood().reshape(-1, 10)[5], expected, rtol=1e-10)
    loaded = sj.load(sj.save(post, tmp_path / "post.npz"))
    assert loaded == post
    np.testing.assert_array_equal(loaded.to_arviz().log_likelihood["y"], idata.log_likelihood["y"])


def test_netcdf_round_trip(chinchilla_post, tmp_path):
    idata = chinchilla_post.to_arviz()
    path = tmp_path / "post.nc"
    idata.to_netcdf(str(path))
    back = az.from_netcdf(str(path))
    for group in (
        "posterior",
        "log_likelihood",
        "posterior_predictive",
        "observed_data",
        "constant_data",
        "sample_stats",
    ):
        xr_a, xr_b = getattr(idata, group), getattr(back, group)
        assert set(xr_a.data_vars) == set(xr_b.data_vars), group
        for name in xr_a.data_vars:
            np.testing.assert_array_equal(xr_a[name].to_numpy(), xr_b[name].to_numpy())
    # ... and through scalejax's own format, the same InferenceData.
    loaded = sj.load(sj.save(chinchilla_post, tmp_path / "post.npz"))
    np.testing.assert_array_equal(loaded.to_arviz().sample_stats["energy"], idata.sample_stats["energy"])


def test_compare_laws_by_loo(chinchilla_post, kaplan_post):
    table = sj.analysis.compare_laws([kaplan_post, chinchilla_post], method="loo", warn=False)
    assert list(table.index) == ["chinchilla", "kaplan"]
    assert {"elpd_loo", "se", "elpd_diff", "dse", "weight", "k_max", "n_high_k", "k_threshold"} <= set(table.columns)
    assert table.loc["chinchilla", "n_params"] == 5
    # A point the posterior cannot predict from the others (a huge outlier) gets a high Pareto k, named by row.
    frame = sj.datasets.load_example("chinchilla").iloc[::3].reset_index(drop=True)
    frame.loc[5, "loss"] *= 3.0
    posts = [
        sj.posterior(law, frame, x=XD, y="loss", likelihood="gaussian", **SMALL) for law in ("chinchilla", "kaplan")
    ]
    with pytest.warns(sj.analysis.LOOWarning, match=r"rows?[^:]*\b5\b"):
        sj.analysis.compare_laws(posts, method="loo")
    with pytest.raises(sj.ScalejaxError, match="different runs"):
        sj.analysis.compare_laws([posts[0], kaplan_post], method="loo")
    with pytest.raises(sj.ScalejaxError, match="unknown comparison method"):
        sj.analysis.compare_laws(["chinchilla", "kaplan"], frame, x=XD, y="loss", method="waic")


def test_to_arviz_without_arviz_says_how_to_install(chinchilla_post, monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(ImportError, match=r"scalejax\[arviz\]"):
        chinchilla_post.to_arviz()


def _ar1(rng, chains, draws, phi, shift=0.0):
    x = np.zeros((chains, draws))
    e = rng.standard_normal((chains, draws))
    for t in range(draws):
        x[:, t] = (phi * x[:, t - 1] if t else 0.0) + e[:, t]
    return x + shift * np.arange(chains)[:, None]


@pytest.mark.parametrize(
    ("chains", "draws", "phi", "shift", "transform"),
    [
        (4, 1000, 0.0, 0.0, None),
        (4, 1000, 0.9, 0.0, np.exp),  # correlated and skewed: ranks, not values, matter
        (2, 301, -0.4, 0.0, None),  # antithetic chains: ESS above the draw count, capped
        (3, 200, 0.5, 1.0, None),  # chains that disagree: R-hat well above 1
        (1, 500, 0.7, 0.0, None),  # one chain: no R-hat, ESS still defined
        (4, 120, 0.3, 0.0, lambda v: np.round(v, 1)),  # ties
    ],
)
def test_rank_normalised_diagnostics_match_arviz(chains, draws, phi, shift, transform):
    x = _ar1(np.random.default_rng(chains * draws), chains, draws, phi, shift)
    x = transform(x) if transform else x
    if chains > 1:
        assert rhat(x) == pytest.approx(float(az.rhat(x, method="rank")), rel=1e-10)
    else:
        assert np.isnan(rhat(x))
    assert ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-10)
    assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=1e-10)
    if shift:
        assert rhat(x) > 1.1

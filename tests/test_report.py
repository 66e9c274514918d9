"""Report figures and the HTML/Markdown report: numbers checked against NumPy closed forms, every caveat
surfaced (bounds, repeated runs, resamples, diagnostics, extrapolation distance), figures drawn for print,
joint laws and group bootstraps, inline display in a notebook, and the command line."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from report_cases import STARTS, groups_bootstrap, joint_case, report_of, sweep_frame

import scalejax as sj
from scalejax.cli import main
from scalejax.report import _caveats as caveats
from scalejax.report import _tables as tables

X = {"N": "N", "D": "D"}
SECTIONS = (
    "caveats",
    "data",
    "parameters",
    "fit",
    "residuals",
    "pairs",
    "extrapolation",
    "compute-optimal",
    "backtest",
    "diagnostics",
    "reproduce",
)
TARGETS = {"N": [70e9, 400e9], "D": [1.4e12, 8e12]}


@pytest.fixture(scope="module")
def frame():
    return sj.datasets.load_example("chinchilla")


@pytest.fixture(scope="module")
def boot(example_bootstrap):
    return example_bootstrap


@pytest.fixture(scope="module")
def point(boot):
    return boot.fit


@pytest.fixture(scope="module")
def sweep():
    return sweep_frame()


@pytest.fixture(scope="module")
def sweep_boot(sweep):
    return sj.bootstrap("chinchilla", sweep, x={"N": "params", "D": "tokens"}, y="loss", n=40, seed=0, starts=STARTS)


def chinchilla_numpy(samples: pd.DataFrame, n, d) -> np.ndarray:
    """E + A/N^alpha + B/D^beta for every draw and point, in NumPy: `(S, m)`."""
    p = {k: samples[k].to_numpy()[:, None] for k in samples}
    return p["E"] + p["A"] / np.asarray(n)[None, :] ** p["alpha"] + p["B"] / np.asarray(d)[None, :] ** p["beta"]


def bands_in(ax) -> int:
    return sum(isinstance(c, PolyCollection) and len(c.get_paths()) > 0 for c in ax.collections)


def sections_of(text: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', text)


# ---------------------------------------------------------------------------------------------- numbers


def test_band_is_the_quantile_of_numpy_predictions(boot):
    n, d = np.array([1e9, 7e10]), np.array([2e10, 1.4e12])
    out = tables.band(boot, {"N": n, "D": d}, 0.9)
    by_hand = chinchilla_numpy(boot.samples, n, d)
    np.testing.assert_allclose(out["lo"], np.quantile(by_hand, 0.05, axis=0), rtol=1e-10)
    np.testing.assert_allclose(out["hi"], np.quantile(by_hand, 0.95, axis=0), rtol=1e-10)
    center = chinchilla_numpy(pd.DataFrame([boot.fit.params]), n, d)[0]
    np.testing.assert_allclose(out["y"], center, rtol=1e-10)


def test_point_fit_intervals_lie_within_each_parameters_range(sweep):
    """Without a bootstrap, E's interval would reach below 0 on the natural scale; it stays inside (0, inf)."""
    point = sj.fit("chinchilla", sweep, x={"N": "params", "D": "tokens"}, y="loss", starts=STARTS)
    table, how = tables.parameter_table(point, 0.95)
    assert "Gauss-Newton" in how
    for param in point.law.params:
        lo, hi, value = table.loc[param.name, ["lo", "hi", "value"]]
        assert lo <= value <= hi, param.name
        assert param.lower is None or lo > param.lower, (param.name, lo)
        assert param.upper is None or hi < param.upper, (param.name, hi)


def test_bound_shares_count_the_draws_at_a_bound(sweep_boot):
    shares = caveats.bound_shares(sweep_boot)
    e = sweep_boot.samples["E"].to_numpy()
    # Independent of the rule (no effect on the fitted values): by value, the draws where E collapsed to ~0.
    assert shares.loc["E", "n_at"] == int(np.sum(e < 1e-6 * np.median(e))) > 0
    assert shares.loc["E", "share"] == pytest.approx(shares.loc["E", "n_at"] / sweep_boot.n_draws)
    assert shares.loc["A", "n_at"] == 0 and shares.loc["B", "n_at"] == 0
    assert set(shares.index) == {"E", "A", "B"}  # alpha and beta have no bounds
    # Known truth: put 5 more draws exactly at E = 1e-13.
    u = np.array(sweep_boot.u)
    fresh = np.flatnonzero(e > 1e-3)[:5]
    u[fresh, 0] = np.log(1e-13)
    moved = sj.Draws(sweep_boot.law, u, center_u=sweep_boot.center_u, data=sweep_boot.data, columns=sweep_boot.columns)
    again = caveats.bound_shares(moved)
    assert again.loc["E", "n_at"] == shares.loc["E", "n_at"] + 5
    assert np.array_equal(np.flatnonzero(again.attrs["mask"][:, 0]), np.flatnonzero(moved.samples["E"] < 1e-6))


def test_caveats_name_every_kind_of_warning(sweep, boot):
    doubled = pd.concat([sweep, sweep.head(2)], ignore_index=True)
    with pytest.warns(sj.DataWarning, match="repeat"):
        data = sj.Data.from_frame(doubled, x={"N": "params", "D": "tokens"}, y="loss")
    stats = {
        "n_resamples": 50,
        "n_converged": 48,
        "n_failed": 2,
        "n_underdetermined": 3,
        "chains": 4,
        "rhat": {"E": 1.002, "A": 1.03, "B": 1.0, "alpha": 1.2, "beta": 1.0},
        "ess": {"E": 800.0, "A": 120.0, "B": 900.0, "alpha": 400.0, "beta": 950.0},
        "divergences": 3,
    }
    draws = sj.Draws(boot.law, boot.u, data=data, columns=boot.columns, stats=stats, warnings=("a doubt of the fit",))
    texts = [c.text for c in caveats.of_draws(draws)]
    joined = "\n".join(texts)
    assert "4 runs repeat the same inputs and loss (rows 0, 1, 20, 21)" in joined
    assert "a doubt of the fit" in texts
    assert "2 of 50 resamples did not converge" in joined
    assert "3 of 50 resamples have fewer distinct runs than the law's 5 parameters" in joined
    assert "R-hat above 1.01 for alpha (1.200), A (1.030)" in joined
    assert "effective sample size below 400 (100 per chain) for A (120)" in joined  # 400 is not below 400
    assert "3 divergent transitions" in joined


def test_forecasts_carry_their_distance_and_both_intervals(boot):
    table = tables.extrapolation_table(boot, TARGETS, 0.95, boot.data)
    c = 6 * np.array(TARGETS["N"]) * np.array(TARGETS["D"])
    largest = np.max(6 * boot.data.x["N"] * boot.data.x["D"])
    np.testing.assert_allclose(table["C"], c)
    np.testing.assert_allclose(table["distance"], np.log10(c / largest), rtol=1e-12)
    reference = sj.analysis.extrapolate(boot, TARGETS, level=0.95)
    np.testing.assert_allclose(table[["y", "lo", "hi"]], reference[["y", "y_lo", "y_hi"]], rtol=1e-10)
    np.testing.assert_allclose(table[["pred_lo", "pred_hi"]], reference[["y_pred_lo", "y_pred_hi"]], rtol=1e-10)
    assert np.all(table["pred_lo"] < table["lo"]) and np.all(table["hi"] < table["pred_hi"])
    assert table.attrs["names"] == ["N=70B, D=1.4T", "N=400B, D=8T"]
    found = caveats.of_forecasts(table)
    assert len(found) == 2 and "2.29 decades (196x)" in found[0].text and "treat it as a guess" in found[1].text


def test_a_forecast_inside_the_runs_compute_but_outside_their_models_or_tokens_is_a_caveat(point):
    """A forecast can leave the data along N or D while its compute stays inside (an isoFLOP study's
    largest models): the caveat names the input and its decades, against log10 of the closed-form ratios."""
    data = point.data
    n, d = data.x["N"], data.x["D"]
    c_max = float(np.max(6 * n * d))
    big = 2 * float(n.max())  # twice the largest fitted model, at half the largest compute
    targets = {
        "N": [big, float(np.median(n)), float(np.median(n))],
        "D": [c_max / (6 * big) / 2, float(d.min()) / 3, float(np.median(d))],
    }
    table = tables.extrapolation_table(point, targets, 0.95, data)
    assert np.all(table["distance"] < 0)
    np.testing.assert_allclose(table.attrs["outside"]["N"], [np.log10(2), 0, 0], atol=1e-12)
    np.testing.assert_allclose(table.attrs["outside"]["D"], [0, -np.log10(3), 0], atol=1e-12)
    found = [c.text for c in caveats.of_forecasts(table)]
    assert len(found) == 2  # the third target is inside every range
    assert "is within the runs' compute, but its N is 0.30 decades (2x) beyond the largest fitted run's" in found[0]
    assert "its D is 0.48 decades (3x) below the smallest fitted run's" in found[1]
    assert all("calibration widens" not in text for text in found)
    # When the calibration widens by N, the caveat says so for the forecast beyond the largest model only.
    table.attrs["calibration"] = types.SimpleNamespace(input="N")
    found = [c.text for c in caveats.of_forecasts(table)]
    assert found[0].endswith("(the calibration widens its predictive interval for its N)")
    assert "calibration widens" not in found[1]


def test_a_joint_laws_forecast_is_measured_against_its_own_groups_runs(frame):
    """A model inside all runs' range but twice the largest of its own group's is outside that group's range."""
    runs = frame.assign(set=np.where(frame.N <= frame.N.median(), "small", "large"))
    law = sj.joint("chinchilla", groups=["small", "large"], shared=["alpha", "beta"])
    fit = sj.fit(law, runs, x={"N": "N", "D": "D", "group": "set"}, y="loss")
    small = runs[runs.set == "small"]
    n = 2 * float(small.N.max())
    assert n < runs.N.max()
    d = float(np.median(small.D))
    targets = pd.DataFrame({"N": [n, n], "D": [d, d], "group": ["small", "large"]})
    table = tables.extrapolation_table(fit, targets, 0.95, fit.data)
    np.testing.assert_allclose(table.attrs["outside"]["N"], [np.log10(2), 0.0], atol=1e-12)
    found = [c.text for c in caveats.of_forecasts(table)]
    assert len(found) == 1 and "its N is 0.30 decades (2x) beyond the largest fitted run's" in found[0]


def test_compute_optimal_frontier_minimises_the_loss_on_each_isoflop(boot):
    compute = np.array([1e21, 1e23, 1e25])
    table = tables.compute_optimal_table(boot, compute, 0.95, boot.data)
    np.testing.assert_allclose(6 * table["N"] * table["D"], compute, rtol=1e-10)
    center = pd.DataFrame([boot.fit.params])
    for c, n_opt in zip(compute, table["N"], strict=True):
        sizes = n_opt * np.array([0.9, 1.0, 1.1])
        losses = chinchilla_numpy(center, sizes, c / (6 * sizes))[0]
        assert losses[1] < losses[0] and losses[1] < losses[2]
    assert np.all(table["N_lo"] < table["N"]) and np.all(table["N"] < table["N_hi"])
    assert np.all(table["loss_pred_lo"] < table["loss_lo"]) and np.all(table["loss_hi"] < table["loss_pred_hi"])
    largest = np.max(6 * boot.data.x["N"] * boot.data.x["D"])
    np.testing.assert_allclose(table["distance"], np.log10(compute / largest))
    (far,) = caveats.of_frontier(table, 0.95)
    assert f"{np.log10(1e25 / largest):.2f} decades" in far.text and "tokens per parameter" in far.text


def test_backtest_holds_out_the_largest_budget_and_forecasts_it(point, frame):
    result = tables.backtest_table(point, point.data, 0.95)
    top = frame["C"] >= np.sort(frame["C"])[-16]
    assert result.n_holdout == int(top.sum()) and result.n_train + result.n_holdout == 81
    assert result.train_scale == pytest.approx(6 * (frame.N * frame.D)[~top].max())
    np.testing.assert_allclose(np.sort(result.table["observed"]), np.sort(frame.loss[top]))
    np.testing.assert_allclose(result.table["rel_error"], result.table["y"] / result.table["observed"] - 1)
    # The synthetic data carry 1.5% noise around the law: forecasts of the held-out runs land within a few %.
    assert result.summary()["mean_abs_rel_error"] < 0.04
    assert np.all(result.table["pred_lo"] < result.table["lo"])
    fig = sj.report.plot_backtest(point)
    assert fig.axes[1].get_ylabel() == "forecast error (% of observed)"
    assert "point fit" in fig.get_suptitle()


# ---------------------------------------------------------------------------------------------- figures


def test_fit_figure_draws_each_size_over_its_own_runs(sweep, sweep_boot):
    fig = sj.report.plot_fit(sweep_boot)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("compute") and ax.get_ylabel() == "loss"
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 4 and sum(len(c.get_offsets()) for c in points) == 20
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(solid) == len(dashed) == 4 and bands_in(ax) == 4
    center = pd.DataFrame([sweep_boot.center])
    for size, line, forecast, dots in zip(np.unique(sweep.params), solid, dashed, points, strict=True):
        mine = sweep[sweep.params == size]
        x = line.get_xdata()
        # Only over this size's runs: from its shortest to its longest run, then 10x the tokens, dashed.
        assert x.min() == pytest.approx(6 * size * mine.tokens.min()) and x.max() == pytest.approx(
            6 * size * mine.tokens.max()
        )
        assert forecast.get_xdata().min() == pytest.approx(x.max()) and forecast.get_xdata().max() == pytest.approx(
            10 * x.max()
        )
        np.testing.assert_allclose(
            line.get_ydata(), chinchilla_numpy(center, np.full(x.size, size), x / (6 * size))[0], rtol=1e-9
        )
        # The curve, its points and its legend entry share one colour.
        assert to_rgba(line.get_color()) == tuple(dots.get_facecolor()[0]) == to_rgba(forecast.get_color())
    sizes = fig.legends[0]
    assert [t.get_text() for t in sizes.get_texts()] == ["N = 20M", "N = 60M", "N = 200M", "N = 600M"]
    assert [to_rgba(h.get_color()) for h in sizes.legend_handles] == [to_rgba(line.get_color()) for line in solid]
    labels = [t.get_text() for t in fig.legends[1].get_texts()]
    assert "95% parameter interval (over 40 bootstrap draws)" in labels


def test_isoflop_designs_are_drawn_as_profiles(point):
    """The embedded example has one run per model size and 9 runs per budget: loss against N per budget."""
    fig = sj.report.plot_fit(point)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "model size N (parameters)" and "isoFLOP" in fig.get_suptitle()
    curves = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(curves) == 9 and bands_in(ax) == 9  # a point fit's delta-method band
    c = 6 * point.data.x["N"] * point.data.x["D"]
    # Each budget's curve spans exactly that budget's model sizes.
    spans = sorted((line.get_xdata().min(), line.get_xdata().max()) for line in curves)
    budgets = np.round(np.log10(c), 2)
    expected = sorted(
        (point.data.x["N"][budgets == b].min(), point.data.x["N"][budgets == b].max()) for b in np.unique(budgets)
    )
    np.testing.assert_allclose(spans, expected, rtol=1e-12)


def test_pair_plot_uses_log_axes_for_scale_parameters_and_marks_bounds(boot, sweep_boot):
    fig = sj.report.plot_pairs(boot)
    assert len(fig.axes) == 25 and len([ax for ax in fig.axes if ax.axison]) == 15
    bottom = fig.axes[-5:]
    assert [ax.get_xlabel() for ax in bottom] == ["E", "A", "B", "alpha", "beta"]
    assert [ax.get_xscale() for ax in bottom] == ["linear", "log", "log", "linear", "linear"]
    assert fig.get_suptitle() == "60 bootstrap draws of chinchilla"
    fig = sj.report.plot_pairs(sweep_boot)
    orange = [c for ax in fig.axes for c in ax.collections if to_rgba(c.get_facecolor()[0])[:3] == to_rgba("C1")[:3]]
    n_at = int(caveats.bound_shares(sweep_boot).loc["E", "n_at"])
    assert orange and all(len(c.get_offsets()) == n_at for c in orange)
    assert fig.axes[-5].get_xscale() == "log"  # E spans from ~0 (its bound) to ~1


def test_point_fit_pair_plot_shows_regions_not_one_point(point):
    fig = sj.report.plot_pairs(point)
    assert "1 draws" not in fig.get_suptitle() and "Gauss-Newton" in fig.get_suptitle()
    k = point.law.n_params
    axes = np.array(fig.axes).reshape(k, k)
    cu, sd = np.asarray(point.center_u), np.sqrt(np.diag(point.cov_u))
    radius = np.sqrt(-2 * np.log(0.05))  # the 95% region of a 2-D Gaussian
    ring = axes[1, 0].lines[0]  # A against E: both log-transformed (lower = 0)
    np.testing.assert_allclose(np.log(ring.get_xdata()).max(), cu[0] + radius * sd[0], rtol=1e-3)
    np.testing.assert_allclose(np.log(ring.get_ydata()).min(), cu[1] - radius * sd[1], rtol=1e-3)


def test_forecast_figure_names_each_target_and_draws_a_trend_to_it(boot):
    fig = sj.report.plot_extrapolation(boot, TARGETS)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts if "N=" in t.get_text()]
    assert labels == ["N=70B, D=1.4T\n+2.3 decades beyond", "N=400B, D=8T\n+3.8 decades beyond"]
    trends = [line for line in ax.lines if line.get_linestyle() == "--"]
    largest = np.max(6 * boot.data.x["N"] * boot.data.x["D"])
    c = 6 * np.array(TARGETS["N"]) * np.array(TARGETS["D"])
    for trend, target in zip(trends, c, strict=True):
        assert trend.get_xdata()[0] == pytest.approx(largest) and trend.get_xdata()[-1] == pytest.approx(target)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "95% parameter interval (over 60 bootstrap draws)" in legend
    assert "95% calibrated predictive interval of one run" in legend  # calibrated by default (issue 14)


def test_frontier_is_solid_inside_dashed_beyond_and_grey_past_its_reach(boot):
    largest = np.max(6 * boot.data.x["N"] * boot.data.x["D"])
    smallest = np.min(6 * boot.data.x["N"] * boot.data.x["D"])
    fig = sj.report.plot_compute_optimal(boot, compute=np.geomspace(smallest, largest * 1e3, 61))
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "optimal model size N* (parameters)",
        "optimal tokens D*",
        "tokens per parameter D*/N*",
        "loss at the optimum",
    ]
    for ax in fig.axes:
        solid, dashed, grey = ax.lines
        assert (solid.get_linestyle(), dashed.get_linestyle(), grey.get_linestyle()) == ("-", "--", ":")
        assert solid.get_xdata().max() <= largest * (1 + 1e-9)
        assert dashed.get_xdata().min() >= largest * (1 - 1e-9) and dashed.get_xdata().max() <= 100 * largest * (
            1 + 1e-9
        )
        assert grey.get_xdata().min() >= 100 * largest * (1 - 1e-9)
    assert all(bands_in(ax) >= 1 for ax in fig.axes) and bands_in(fig.axes[3]) >= 2  # loss: predictive too


# Draws whose statistics hold per-parameter diagnostics, as a posterior's do.
POSTERIOR_STATS = {
    "likelihood": "student_t",
    "method": "nuts",
    "chains": 4,
    "rhat": {"E": 1.002, "A": 1.03, "B": 1.0, "alpha": 1.01, "beta": 1.0},
    "ess": {"E": 800.0, "A": 120.0, "B": 900.0, "alpha": 400.0, "beta": 950.0},
    "divergences": 3,
}


def test_diagnostics_of_fit_bootstrap_and_posterior_like_draws(point, boot):
    lanes, per_param = tables.diagnostics_table(boot)
    values = dict(zip(lanes["item"], lanes["value"], strict=True))
    assert values["resamples converged"] == boot.n_converged and values["starts of the full-data fit"] == len(STARTS)
    assert per_param is None
    fig = sj.report.plot_diagnostics(point)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == f"how the {point.n_starts} starts of the fit ended"
    assert sum(p.get_width() for p in fig.axes[0].patches) == point.n_starts

    post = sj.Draws(boot.law, boot.u, columns=boot.columns, stats=POSTERIOR_STATS)
    lanes, per_param = tables.diagnostics_table(post)
    assert per_param.loc["A", "R-hat"] == 1.03 and per_param.loc["E", "ESS"] == 800.0
    assert dict(zip(lanes["item"], lanes["value"], strict=True))["divergent transitions"] == 3.0
    fig = sj.report.plot_diagnostics(post)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[-2:] == ["R-hat of each parameter", "effective sample size of each parameter"]
    rhat, ess = fig.axes[-2], fig.axes[-1]
    for ax, threshold in ((rhat, 1.01), (ess, 400.0)):
        assert not ax.patches  # dots, not bars from zero
        assert [tuple(line.get_xdata()) for line in ax.lines] == [(threshold, threshold)]
    fails = {
        ax: [c for c in ax.collections if to_rgba(c.get_facecolor()[0])[:3] == to_rgba("C3")[:3]] for ax in (rhat, ess)
    }
    assert len(fails[rhat][0].get_offsets()) == 1 and fails[rhat][0].get_offsets()[0, 0] == 1.03
    assert len(fails[ess][0].get_offsets()) == 1 and fails[ess][0].get_offsets()[0, 0] == 120.0
    assert rhat.get_xlim()[0] > 0.9  # R-hat near 1 is readable: no axis from zero


def test_draws_without_data_need_it_for_data_figures(boot, frame):
    draws = sj.Draws(boot.law, boot.u, columns=boot.columns)
    with pytest.raises(sj.DataError, match="plot_fit needs the data"):
        sj.report.plot_fit(draws)
    fig = sj.report.plot_fit(draws, data=frame)
    assert bands_in(fig.axes[0]) == 9


def test_figures_show_inline_in_a_fresh_jupyter_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cell = (
        "import scalejax as sj\n"
        "law = sj.laws.get('power')\n"
        "draws = sj.Draws(law, law.pack([[1.7, 400.0, 0.3], [1.8, 420.0, 0.31], [1.6, 380.0, 0.29]]))\n"
        "sj.report.plot_pairs(draws)"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    (output,) = notebook.cells[0].outputs
    assert output["output_type"] == "execute_result"
    assert base64.b64decode(output["data"]["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_report_module_does_not_touch_pyplot():
    code = "import sys, scalejax.report; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------- the report


def test_html_report_opens_with_caveats_and_has_every_section(example_report, example_bootstrap):
    text = example_report.read_text()
    assert sections_of(text) == list(SECTIONS)
    assert re.search(r'<section id="caveats"><h2>Caveats</h2>', text)
    assert not re.search(r"https?://", text) and "<script" not in text and "<link" not in text
    images = re.findall(r'<img class="figure" alt="[^"]+" src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 7
    assert all(base64.b64decode(b).startswith(b"\x89PNG\r\n\x1a\n") for b in images)
    words = re.sub(r'src="data:image/png;base64,[^"]+"', "", text)
    assert "Skipped" not in words and not re.search(r"\blanes?\b", words, re.I)
    title = re.search(r"<h1>(.*?)</h1>", text).group(1)
    assert title == "Scaling-law report: chinchilla fitted to 81 runs of loss, forecasts at N=70B, D=1.4T; N=400B, D=8T"
    # Forecast columns are named after the y column, every interval says what it is.
    assert "<th>loss</th><th>95% parameter interval</th><th>95% calibrated predictive interval</th>" in text
    # The forecast section says what the calibration found, in the numbers calibrate gives on the same runs.
    cal = sj.analysis.calibrate(example_bootstrap.fit)
    found = re.search(r"Rolling backtests inside the data \((\d+) folds: fit the runs below a cut-off in compute", text)
    assert found and int(found.group(1)) == int(cal.folds.used.sum())
    if cal.tau0 == 0 and cal.slope == 0:
        assert "found no growth of forecast errors" in text
    else:
        assert f"deviation {cal.tau0:.3g} + {cal.slope:.3g} per" in text
    caveat_block = text.split('<section id="data">')[0]
    assert "Forecast:</code> the forecast at N=70B, D=1.4T is 2.29 decades (196x) beyond" in caveat_block
    assert "scheme=&#x27;rows&#x27;" in text  # the reproduce line
    assert not list(example_report.parent.glob(".*.tmp"))  # written atomically, no temporary left


def test_markdown_report_has_the_same_content(point, tmp_path):
    out = sj.write_report(point, out=tmp_path / "fit.md", command="scalejax report runs.csv ...", source="runs.csv")
    text = out.read_text()
    titles = re.findall(r"^## (.+)$", text, re.M)
    assert titles == ["Caveats", "Data", "Parameters", "Fit", "Residuals", "Pair plot of the draws", "Forecasts",
                      "Compute-optimal frontier", "Backtest", "Diagnostics", "Reproduce"]  # fmt: skip
    assert text.startswith("# Scaling-law report: chinchilla fitted to runs.csv (loss), forecasts at ")
    assert "**Fit:** a point fit: its intervals are local Gauss-Newton approximations" in text
    linked = re.findall(r"!\[[^\]]*\]\((fit_files/[a-z-]+\.png)\)", text)
    assert len(linked) == 7
    assert all((tmp_path / p).stat().st_size > 1000 for p in linked)
    assert "`scalejax report runs.csv ...`" in text
    assert "Gauss-Newton standard errors" in text  # a point fit's intervals say where they come from


def test_joint_law_reports_and_figures(frame, tmp_path_factory, tmp_path):
    *_, boot = joint_case()
    fig = sj.report.plot_fit(boot)
    ax = fig.axes[0]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(points) == len(solid) == 3
    for dots, line in zip(points, solid, strict=True):  # one colour per group: points, curve and band agree
        assert tuple(dots.get_facecolor()[0]) == to_rgba(line.get_color())
    assert len({to_rgba(line.get_color()) for line in solid}) == 3
    text = report_of("joint", tmp_path_factory.mktemp("joint")).read_text()
    assert sections_of(text) == list(SECTIONS)
    assert "web: C=1e+22" in text and "books: C=1e+23" in text  # default targets per group, by label
    table = tables.extrapolation_table(boot, pd.DataFrame({"C": [1e22], "group": ["code"]}), 0.95, boot.data)
    by_hand = boot.samples.eval("E_code + A_code * 1e22 ** -alpha").to_numpy()
    np.testing.assert_allclose([table["lo"][1], table["hi"][1]], np.quantile(by_hand, [0.025, 0.975]), rtol=1e-10)
    assert table["distance"][1] == pytest.approx(1.0)
    with pytest.raises(sj.DataError, match="not among the joint law's groups"):
        sj.write_report(boot, targets=pd.DataFrame({"C": [1e22], "group": ["films"]}), out=tmp_path / "bad.html")

    nd = sj.joint("chinchilla", groups=["a", "b"], shared=["alpha", "beta"])
    split = frame.assign(half=np.where(np.arange(len(frame)) % 2 == 0, "a", "b"))
    start = {
        **{f"{k}_{g}": v for k, v in (("E", 1.7), ("A", 400.0), ("B", 400.0)) for g in "ab"},
        "alpha": 0.3,
        "beta": 0.3,
    }
    fit = sj.fit(nd, split, x={"N": "N", "D": "D", "group": "half"}, y="loss", starts=start)
    fig = sj.report.plot_fit(fit)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]  # one panel per group
    frontier = tables.compute_optimal_table(fit, [1e22, 1e23], 0.95, fit.data)
    assert list(frontier["group"]) == ["a", "a", "b", "b"]
    text = sj.write_report(fit, out=tmp_path / "joint_nd.md").read_text()
    assert re.findall(r"^## (.+)$", text, re.M)[:3] == ["Caveats", "Data", "Parameters"]
    assert "the compute-optimal frontier for b reaches" in text


def test_groups_bootstrap_report(tmp_path_factory):
    text = report_of("groups", tmp_path_factory.mktemp("groups")).read_text()
    assert sections_of(text) == list(SECTIONS) and "groups scheme" in text
    assert "Skipped" not in re.sub(r'src="[^"]+"', "", text)  # the backtest refits with the same scheme
    assert groups_bootstrap().stats["scheme"] == "groups"


def test_other_laws_skip_the_frontier_and_bad_targets_fail_before_writing(frame, tmp_path):
    law = sj.laws.get("power")
    draws = sj.Draws(law, law.pack([[1.7, 1000.0, 0.15], [1.8, 1100.0, 0.16]]), columns={"x": "C", "y": "loss"})
    with pytest.raises(sj.LawError, match="needs a law of model size N and tokens D"):
        sj.report.plot_compute_optimal(draws, data=frame)
    fig = sj.report.plot_fit(draws, data=frame)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "C (input x)"  # the column, and the law's name for it
    assert fig.axes[0].get_ylabel() == "loss"
    assert len(fig.axes[0].lines) == 2 and bands_in(fig.axes[0]) == 1  # solid over the runs, dashed beyond
    with pytest.raises(sj.DataError, match="targets lack"):
        sj.write_report(draws, data=frame, targets={"N": [1e9]}, out=tmp_path / "bad.html")
    assert not (tmp_path / "bad.html").exists()


def test_report_escapes_text_from_a_custom_law(tmp_path):
    @sj.law(
        params=[sj.Param("E", lower=0), sj.Param("A", lower=0), "alpha"],
        inputs=["N"],
        equation="y = E + A N^-alpha for N < 1e12 & more",
        reference="<b>not bold</b>",
    )
    def my_law(p, x):
        return p["E"] + p["A"] * x["N"] ** -p["alpha"]

    draws = sj.Draws(my_law, np.array([[0.5, 3.0, 0.3], [0.6, 3.1, 0.32], [0.55, 2.9, 0.31]]))
    text = sj.write_report(draws, targets={"N": [1e11]}, out=tmp_path / "custom.html").read_text()
    assert "N &lt; 1e12 &amp; more" in text and "&lt;b&gt;not bold&lt;/b&gt;" in text and "<b>" not in text
    assert text.count("Skipped: no data.") == 3  # fit, residuals, backtest
    assert "Skipped: the compute-optimal frontier" in text
    assert "There is no predictive interval: these draws carry no noise scale" in text


def test_a_forecast_too_few_runs_can_calibrate_says_so(tmp_path):
    x = np.geomspace(1e3, 1e6, 5)
    fit = sj.fit("powerlaw", x={"x": x}, y=2.0 + 40.0 * x**-0.3 * np.exp(0.01 * np.sin(7 * x)), noise="constant")
    assert fit.law.n_params == 2  # a rolling fold needs 4 fitted runs: 5 runs give one cut-off
    text = sj.write_report(fit, targets={"x": [1e8]}, out=tmp_path / "few.md").read_text()
    assert "95% predictive interval" in text and "calibrated predictive interval" not in text
    assert "The predictive interval is not calibrated for extrapolation (a rolling backtest needs" in text
    caveats = text.split("## Data")[0]
    assert "the predictive intervals are not calibrated for extrapolation (a rolling backtest needs" in caveats


# ---------------------------------------------------------------------------------------------- command line


def test_cli_report_writes_html_and_saves_the_result(frame, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    frame.rename(columns={"N": "params", "D": "tokens"}).to_csv(csv, index=False)
    out, saved = tmp_path / "r.html", tmp_path / "r.npz"
    args = ["report", csv, "--law", "chinchilla", "--x", "N=params", "--x", "D=tokens", "--y", "loss"]
    status = main([str(a) for a in [*args, "--target", "N=70e9,D=1.4e12", "--out", out, "--save", saved]])
    _, err = capsys.readouterr()
    assert status == 0, err
    text = out.read_text()
    assert sections_of(text) == list(SECTIONS)
    assert "scalejax report" in text and "--target N=70e9,D=1.4e12" in text
    assert f"<h1>Scaling-law report: chinchilla fitted to {csv} (loss), forecasts at N=70B, D=1.4T</h1>" in text
    loaded = sj.load(saved)
    assert isinstance(loaded, sj.Fit) and loaded.stats["n_screened"] == 4500 and loaded.data.n == 81
    assert f'<td class="n">{loaded.params["alpha"]:.4g}</td>' in text  # the report shows the saved fit

    bad = [
        (["--posterior", "--bootstrap", "10"], "not both"),
        (["--target", "N=70e9"], "lacks D"),
        (["--target", "N=70e9,D=big"], "'big' is not a number"),
        (["--target", "N=70e9,D=1e12,Q=3"], "'Q' is not an input"),
        (["--level", "1.5"], "--level must be between 0 and 1"),
    ]
    for extra, message in bad:
        status = main([str(a) for a in [*args, *extra, "--out", tmp_path / "no.html"]])
        _, err = capsys.readouterr()
        assert status == 2 and message in err and err.count("\n") == 1, err
    status = main([str(a) for a in [*args, "--out", tmp_path / "missing" / "r.html"]])
    _, err = capsys.readouterr()
    assert status == 2 and "--out" in err and "does not exist" in err
    assert not (tmp_path / "no.html").exists()


def test_cli_prints_the_reports_caveats_and_fit_puts_them_in_the_json(sweep, tmp_path, capsys):
    csv = tmp_path / "sweep.csv"
    pd.concat([sweep, sweep.tail(1)], ignore_index=True).to_csv(csv, index=False)
    args = ["--law", "chinchilla", "--x", "N=params", "--x", "D=tokens", "--y", "loss", "--bootstrap", "40"]
    out, saved = tmp_path / "r.html", tmp_path / "r.npz"
    status = main([str(a) for a in ["report", csv, *args, "--out", out, "--save", saved]])
    _, err = capsys.readouterr()
    assert status == 0, err
    lines = err.splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines), err
    assert "FitWarning" not in err and "DataWarning" not in err and ".py:" not in err  # no raw Python warnings
    assert any("2 runs repeat the same inputs and loss (lines 21, 22)" in line for line in lines)
    assert any("beyond the largest run's compute" in line for line in lines)
    # The same list as the report's Caveats section.
    block = out.read_text().split('<section id="data">')[0]
    shown = [re.sub(r"<[^>]+>", "", p).split(": ", 1)[1] for p in re.findall(r'<p class="caveat">(.*?)</p>', block)]
    assert [line.removeprefix("warning: ") for line in lines] == [html.unescape(p) for p in shown]
    e = sj.load(saved).samples["E"].to_numpy()
    n_at = int(np.sum(e < 1e-6))
    bound = [line for line in lines if "E is at its lower bound 0" in line]
    assert n_at > 0 and len(bound) == 1 and f"in {n_at} of 40 draws ({100 * n_at / 40:.1f}%)" in bound[0]
    assert f'<td class="s">{100 * n_at / 40:.1f}%</td>' in out.read_text()  # the table's "draws at a bound"

    status = main([str(a) for a in ["fit", csv, *args, "--json", tmp_path / "fit.json"]])
    _, err = capsys.readouterr()
    assert status == 0, err
    payload = json.loads((tmp_path / "fit.json").read_text())
    assert any("repeat the same inputs" in w for w in payload["warnings"])
    assert [w for w in payload["warnings"] if "lower bound" in w] == [b.removeprefix("warning: ") for b in bound]
    assert all(f"warning: {w}" in err for w in payload["warnings"])


@pytest.mark.slow
def test_cli_report_from_the_posterior(frame, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "post.html"
    argv = ["report", csv, "--law", "chinchilla", "--x", "N=N", "--x", "D=D", "--y", "loss", "--posterior"]
    status = main([str(a) for a in [*argv, "--out", out]])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    assert "posterior: R-hat max" in stdout
    text = out.read_text()
    assert sections_of(text) == list(SECTIONS)
    assert "largest R-hat" in text and "smallest effective sample size" in text
    assert "<th>R-hat</th><th>ESS</th>" in text

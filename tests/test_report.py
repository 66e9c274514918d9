"""Report figures and the HTML/Markdown report: axes and labels, numbers checked against NumPy closed forms,
every section present, nothing external, and the command line."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

import scalejax as sj
from scalejax.cli import main
from scalejax.report import _tables as tables

X = {"N": "N", "D": "D"}
SECTIONS = (
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


def chinchilla_numpy(samples: pd.DataFrame, n, d) -> np.ndarray:
    """E + A/N^alpha + B/D^beta for every draw and point, in NumPy: `(S, m)`."""
    p = {k: samples[k].to_numpy()[:, None] for k in samples}
    return p["E"] + p["A"] / np.asarray(n)[None, :] ** p["alpha"] + p["B"] / np.asarray(d)[None, :] ** p["beta"]


def bands_in(ax) -> int:
    return sum(isinstance(c, PolyCollection) for c in ax.collections)


def test_fit_figure_has_curves_with_bands_only_for_many_draws(point, boot):
    for draws, banded in ((point, False), (boot, True)):
        fig = sj.report.plot_fit(draws)
        assert isinstance(fig, Figure)
        ax = fig.axes[0]
        assert ax.get_xlabel().startswith("compute") and ax.get_ylabel() == "loss"
        assert len(fig.axes) == 2  # the plot and the model-size colour bar
        assert fig.axes[1].get_ylabel() == "model size N"
        assert len(ax.lines) == 6  # one curve per representative model size
        assert (bands_in(ax) == 6) is banded and (bands_in(ax) == 0) is not banded
        assert ax.collections[0].get_offsets().shape == (81, 2)  # every run plotted


def test_band_is_the_quantile_of_numpy_predictions(boot):
    n, d = np.array([1e9, 7e10]), np.array([2e10, 1.4e12])
    out = tables.band(boot, {"N": n, "D": d}, 0.9)
    by_hand = chinchilla_numpy(boot.samples, n, d)
    np.testing.assert_allclose(out["lo"], np.quantile(by_hand, 0.05, axis=0), rtol=1e-10)
    np.testing.assert_allclose(out["hi"], np.quantile(by_hand, 0.95, axis=0), rtol=1e-10)
    center = chinchilla_numpy(pd.DataFrame([boot.fit.params]), n, d)[0]
    np.testing.assert_allclose(out["y"], center, rtol=1e-10)


def test_residual_figure_plots_log_ratio_at_the_fit(point, frame):
    fig = sj.report.plot_residuals(point)
    ax, hist = fig.axes[0], fig.axes[1]
    assert "log(observed / fitted" in ax.get_ylabel() and hist.get_xlabel() == "log(observed / fitted)"
    plotted = ax.collections[0].get_offsets()[:, 1]
    by_hand = np.log(frame["loss"].to_numpy() / chinchilla_numpy(pd.DataFrame([point.params]), frame.N, frame.D)[0])
    np.testing.assert_allclose(plotted, by_hand, rtol=1e-8, atol=1e-12)


def test_pair_plot_has_one_axis_per_pair_and_names(boot, point):
    fig = sj.report.plot_pairs(boot)
    assert len(fig.axes) == 25
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 15  # lower triangle and diagonal
    assert [ax.get_xlabel() for ax in fig.axes[-5:]] == ["E", "A", "B", "alpha", "beta"]
    assert "60 draws" in fig.get_suptitle()
    assert "no spread" in sj.report.plot_pairs(point).get_suptitle()


def test_extrapolation_matches_predict_and_covers_the_center(boot):
    table = tables.extrapolation_table(boot, TARGETS, 0.95)
    reference = boot.predict(TARGETS, level=0.95)
    np.testing.assert_allclose(table["y"], reference["y"], rtol=1e-10)
    np.testing.assert_allclose(table[["lo", "hi"]], reference[["lo", "hi"]], rtol=1e-10)
    np.testing.assert_allclose(table["C"], 6 * np.array(TARGETS["N"]) * np.array(TARGETS["D"]))
    fig = sj.report.plot_extrapolation(boot, TARGETS)
    ax = fig.axes[0]
    assert "2 target runs" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == ["1", "2"]  # numbered as the table's rows
    assert list(table.index) == [1, 2] and table.index.name == "target"


def test_compute_optimal_frontier_minimises_the_loss_on_each_isoflop(boot):
    compute = np.array([1e21, 1e23, 1e25])
    table = tables.compute_optimal_table(boot, compute, 0.95)
    np.testing.assert_allclose(6 * table["N"] * table["D"], compute, rtol=1e-10)
    center = pd.DataFrame([boot.fit.params])
    for c, n_opt in zip(compute, table["N"], strict=True):
        sizes = n_opt * np.array([0.9, 1.0, 1.1])
        losses = chinchilla_numpy(center, sizes, c / (6 * sizes))[0]
        assert losses[1] < losses[0] and losses[1] < losses[2]
    assert np.all(table["N_lo"] < table["N"]) and np.all(table["N"] < table["N_hi"])
    fig = sj.report.plot_compute_optimal(boot, compute=compute)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "optimal model size N* (parameters)",
        "optimal tokens D*",
        "loss at the optimum",
    ]
    assert all(bands_in(ax) == 1 for ax in fig.axes)


def test_backtest_holds_out_the_largest_budget_and_forecasts_it(point, frame):
    result = tables.backtest_table(point, point.data, 0.95)
    top = frame["C"] >= np.sort(frame["C"])[-16]
    assert result.n_holdout == int(top.sum()) and result.n_train + result.n_holdout == 81
    assert result.train_scale == pytest.approx(6 * (frame.N * frame.D)[~top].max())
    np.testing.assert_allclose(np.sort(result.table["observed"]), np.sort(frame.loss[top]))
    np.testing.assert_allclose(result.table["rel_error"], result.table["y"] / result.table["observed"] - 1)
    # The synthetic data carry 1.5% noise around the law: forecasts of the held-out runs land within a few %.
    assert result.summary()["mean_abs_rel_error"] < 0.04
    fig = sj.report.plot_backtest(point)
    assert fig.axes[1].get_ylabel() == "forecast error (% of observed)"
    assert "point fit" in fig.axes[0].get_title()


# Draws whose statistics hold per-parameter diagnostics, as a posterior's do.
POSTERIOR_STATS = {
    "r_hat": {"E": 1.002, "A": 1.03, "B": 1.0, "alpha": 1.01, "beta": 1.0},
    "ess": {"E": 800.0, "A": 120.0, "B": 900.0, "alpha": 400.0, "beta": 950.0},
    "divergences": 3,
}


def test_diagnostics_of_fit_bootstrap_and_posterior_like_draws(point, boot):
    lanes, per_param = tables.diagnostics_table(boot)
    values = dict(zip(lanes["item"], lanes["value"], strict=True))
    assert values["resamples converged"] == boot.n_converged and values["starts converged"] == point.n_converged
    assert per_param is None
    fig = sj.report.plot_diagnostics(point)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "lane outcomes"
    assert sum(p.get_height() for p in fig.axes[0].patches) == point.n_starts

    post = sj.Draws(boot.law, boot.u, columns=boot.columns, stats=POSTERIOR_STATS)
    lanes, per_param = tables.diagnostics_table(post)
    assert per_param.loc["A", "r_hat"] == 1.03 and per_param.loc["E", "ess"] == 800.0
    assert dict(zip(lanes["item"], lanes["value"], strict=True))["divergences"] == 3.0
    fig = sj.report.plot_diagnostics(post)
    assert [ax.get_title() for ax in fig.axes] == ["lane outcomes", "r_hat", "ess"]


def test_draws_without_data_need_it_for_data_figures(boot, frame):
    draws = sj.Draws(boot.law, boot.u, columns=boot.columns)
    with pytest.raises(sj.DataError, match="plot_fit needs the data"):
        sj.report.plot_fit(draws)
    fig = sj.report.plot_fit(draws, data=frame)
    assert bands_in(fig.axes[0]) == 6


def test_html_report_has_every_section_and_nothing_external(example_report):
    text = example_report.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert not re.search(r"https?://", text) and "<script" not in text and "<link" not in text
    images = re.findall(r'<img class="figure" alt="[^"]+" src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 7
    assert all(base64.b64decode(b).startswith(b"\x89PNG\r\n\x1a\n") for b in images)
    assert "Skipped" not in text
    assert "7e+10" in text and "scheme=&#x27;rows&#x27;" in text  # a target row and the reproduce line
    assert not list(example_report.parent.glob(".*.tmp"))  # written atomically, no temporary left


def test_markdown_report_writes_figures_beside_it(point, tmp_path):
    out = sj.write_report(point, out=tmp_path / "fit.md", command="scalejax report runs.csv ...")
    text = out.read_text()
    for title in ("## Data", "## Parameters", "## Backtest", "## Diagnostics", "## Reproduce"):
        assert title in text
    linked = re.findall(r"!\[[^\]]*\]\((fit_files/[a-z-]+\.png)\)", text)
    assert len(linked) == 7
    assert all((tmp_path / p).stat().st_size > 1000 for p in linked)
    assert "`scalejax report runs.csv ...`" in text
    assert "Gauss-Newton" in text  # a point fit's intervals say where they come from


def test_other_laws_skip_the_frontier_and_bad_targets_fail_before_writing(frame, tmp_path):
    law = sj.laws.get("power")
    draws = sj.Draws(law, law.pack([[1.7, 1000.0, 0.15], [1.8, 1100.0, 0.16]]), columns={"x": "C", "y": "loss"})
    with pytest.raises(sj.LawError, match="Chinchilla form only"):
        sj.report.plot_compute_optimal(draws, data=frame)
    fig = sj.report.plot_fit(draws, data=frame)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "x"  # one input: no colour bar
    assert len(fig.axes[0].lines) == 1 and bands_in(fig.axes[0]) == 1
    with pytest.raises(sj.DataError, match="targets lack"):
        sj.write_report(draws, data=frame, targets={"N": [1e9]}, out=tmp_path / "bad.html")
    assert not (tmp_path / "bad.html").exists()


def test_report_module_does_not_touch_pyplot():
    code = "import sys, scalejax.report; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_report_writes_html_and_saves_the_result(frame, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    frame.rename(columns={"N": "params", "D": "tokens"}).to_csv(csv, index=False)
    out, saved = tmp_path / "r.html", tmp_path / "r.npz"
    args = ["report", csv, "--law", "chinchilla", "--x", "N=params", "--x", "D=tokens", "--y", "loss"]
    status = main([str(a) for a in [*args, "--target", "N=70e9,D=1.4e12", "--out", out, "--save", saved]])
    _, err = capsys.readouterr()
    assert status == 0, err
    text = out.read_text()
    assert all(f'<section id="{s}">' in text for s in SECTIONS)
    assert "scalejax report" in text and "--target N=70e9,D=1.4e12" in text
    loaded = sj.load(saved)
    assert isinstance(loaded, sj.Fit) and loaded.stats["n_screened"] == 4500 and loaded.data.n == 81
    assert f"<td>{loaded.params['alpha']:.5g}</td>" in text  # the report shows the saved fit

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
    assert "Skipped: the frontier" in text


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
    assert all(f'<section id="{s}">' in text for s in SECTIONS)
    assert "rhat_max" in text and "ess_min" in text and "divergences" in text

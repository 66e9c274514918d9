"""How results show themselves: summary() as data, a readable repr, HTML in a fresh Jupyter kernel, no import noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scalejax as sj

X = {"x": "x"}


@pytest.fixture(scope="module")
def power_frame():
    rng = np.random.default_rng(4)
    x = np.geomspace(1.0, 1e4, 30)
    return pd.DataFrame({"x": x, "loss": 2.0 * x**-0.3 * np.exp(0.02 * rng.standard_normal(30))})


def test_fit_summary_is_data_checked_against_numpy(power_frame):
    fit = sj.fit("powerlaw", power_frame, x=X, y="loss", loss="squared_log")
    s = fit.summary()
    assert s["kind"] == "Fit" and s["law"] == "powerlaw" and s["y"] == "loss" and s["loss"] == "squared_log"
    assert s["n_points"] == 30 and s["dof"] == 28
    # Residual scale and Gaussian AIC by hand from the fitted parameters.
    p = fit.params
    r = np.log(p["A"] * power_frame.x ** -p["alpha"]) - np.log(power_frame.loss)
    assert s["residual_sd"] == pytest.approx(np.sqrt(np.sum(r**2) / 28), rel=1e-6)
    loglik = -0.5 * 30 * (np.log(2 * np.pi * np.mean(r**2)) + 1)
    assert s["aic"] == pytest.approx(2 * 3 - 2 * loglik, rel=1e-6)
    assert s["n_starts"] == fit.n_starts and s["n_converged"] == fit.n_converged and s["n_at_best"] == fit.n_at_best
    pd.testing.assert_frame_equal(s["params"], fit.table())
    # Correlation of log A and alpha in the log-log regression log y = log A - alpha log x (closed form).
    lx = np.log(power_frame.x.to_numpy())
    expected = lx.mean() / np.sqrt(np.mean(lx**2))
    assert s["correlations"].loc["A", "alpha"] == pytest.approx(expected, rel=1e-6)
    assert s["warnings"] == []
    text = repr(fit)
    assert text.splitlines()[0] == f"Fit of powerlaw(x) -> loss: {fit.describe()}"
    assert "residual dof 28" in text and "alpha" in text and "stderr" in text


def test_bootstrap_and_posterior_summaries(example_bootstrap, power_frame):
    s = example_bootstrap.summary(0.9)
    assert s["kind"] == "Bootstrap" and s["level"] == 0.9
    assert s["n_resamples"] == 60 and s["n_converged"] == example_bootstrap.n_converged and s["n_points"] == 81
    pd.testing.assert_frame_equal(s["params"], example_bootstrap.table(0.9))
    np.testing.assert_allclose(s["correlations"].to_numpy(), np.corrcoef(example_bootstrap.samples.to_numpy().T))
    assert "resamples 60" in repr(example_bootstrap)

    post = sj.posterior("powerlaw", power_frame, x=X, y="loss", method="laplace", draws=100)
    s = post.summary()
    assert s["kind"] == "Posterior" and s["chains"] == 4 and "aic" not in s
    assert {"median", "lo", "hi", "rhat", "ess", "ess_tail"} <= set(s["params"].columns)
    assert "sigma" in s["params"].index
    assert "<table" in post._repr_html_()


def test_warnings_and_names_are_shown_and_escaped():
    @sj.law(params=[sj.Param("a", grid=(1.0,)), sj.Param("k", lower=0, grid=(1.0,))], inputs=["x"])
    def flat(p, x):
        return p["a"] + 0.0 * p["k"] * x["x"]

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "<script>": [1.0, 1.1, 0.9, 1.0]})
    with pytest.warns(sj.FitWarning):
        fit = sj.fit(flat, frame, x=X, y="<script>")
    html = fit._repr_html_()
    assert "<script>" not in html and "-&gt; &lt;script&gt;" in html
    assert fit.warnings and "Warnings" in html and "no effect" in html
    assert "warnings:" in repr(fit) and fit.warnings[0] in repr(fit)


@pytest.mark.slow
def test_a_fit_displays_as_html_and_a_figure_as_an_image_in_a_fresh_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import scalejax as sj",
        "import scalejax.bayes  # loads NumPyro, which imports tqdm.auto",
        "import pandas as pd\n"
        "frame = pd.DataFrame({'x': [1.0, 2, 4, 8, 16, 32], 'loss': [2.0, 1.62, 1.33, 1.07, 0.88, 0.72]})\n"
        "fit = sj.fit('powerlaw', frame, x={'x': 'x'}, y='loss')",
        "fit",
        "fig = sj.report.plot_fit(fit)\nfig",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3")
    client.execute(cwd=str(tmp_path))
    outputs = [cell.get("outputs", []) for cell in notebook.cells]
    # No warning or other text on stderr from importing scalejax or NumPyro (no ipywidgets here).
    noise = [o for out in outputs[:2] for o in out if o.get("name") == "stderr" or o["output_type"] == "error"]
    assert not noise, noise
    (result,) = outputs[3]
    html = result["data"]["text/html"]
    assert "<table" in html and "alpha" in html and "stderr" in html and "powerlaw" in html
    assert result["data"]["text/plain"].startswith("Fit of powerlaw(x) -> loss")
    # A figure function's result displays as an image.
    images = [o for o in outputs[4] if "image/png" in o.get("data", {})]
    assert images and len(images[0]["data"]["image/png"]) > 1000, outputs[4]

"""Checkpoint preprocessing (sj.datasets.final_rows, last_k_mean, skip_first, moving_average, add_anchor).

Each helper is checked against a plain Python loop over the runs.
"""

import math

import numpy as np
import pandas as pd
import pytest

import scalejax as sj


@pytest.fixture
def log():
    """Three runs of different lengths, checkpoints shuffled, with a step column."""
    rng = np.random.default_rng(0)
    parts = []
    for run, n in (("a", 7), ("b", 3), ("c", 12)):
        parts.append(
            pd.DataFrame(
                {"run": run, "step": np.arange(n) * 100, "bpb": rng.uniform(0.5, 1.5, n), "acc": rng.uniform(0, 1, n)}
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    return frame.sample(frac=1.0, random_state=1)


def by_run(frame):
    return {run: g.sort_values("step") for run, g in frame.groupby("run")}


def test_final_rows_and_last_k_mean(log):
    final = sj.datasets.final_rows(log, by="run", order="step").set_index("run")
    means = sj.datasets.last_k_mean(log, by="run", k=5, columns=["bpb"], order="step").set_index("run")
    for run, g in by_run(log).items():
        assert final.loc[run, "step"] == g["step"].iloc[-1]
        assert means.loc[run, "step"] == g["step"].iloc[-1]  # other columns: the final checkpoint's
        assert means.loc[run, "acc"] == g["acc"].iloc[-1]
        assert means.loc[run, "bpb"] == pytest.approx(np.mean(g["bpb"].to_numpy()[-5:]))  # run b has only 3


def test_skip_first_drops_the_ceiling_of_the_fraction(log):
    kept = sj.datasets.skip_first(log, by="run", fraction=0.1, order="step")
    for run, g in by_run(log).items():
        n = len(g)
        assert kept[kept["run"] == run]["step"].tolist() == g["step"].tolist()[math.ceil(0.1 * n) :]


def test_moving_average_is_trailing_with_short_windows_at_the_start(log):
    smooth = sj.datasets.moving_average(log, by="run", window=5, columns=["bpb", "acc"], order="step")
    for run, g in by_run(log).items():
        got = smooth[smooth["run"] == run]
        for col in ("bpb", "acc"):
            v = g[col].to_numpy()
            want = [np.mean(v[max(0, i - 4) : i + 1]) for i in range(len(v))]
            np.testing.assert_allclose(got[col].to_numpy(), want, rtol=1e-12)
    assert len(smooth) == len(log)


def test_add_anchor_appends_labelled_rows():
    t = pd.DataFrame({"bpb": [1.2, 0.9], "acc": [0.4, 0.6], "task": ["x", "x"]})
    out = sj.datasets.add_anchor(t, [{"bpb": 0.0, "acc": 1.0, "task": "x"}], run="anchor")
    assert out["acc"].tolist() == [0.4, 0.6, 1.0] and out["run"].tolist()[-1] == "anchor"
    with pytest.raises(sj.DataError, match="not columns"):
        sj.datasets.add_anchor(t, {"loss": 0.0})


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t: sj.datasets.last_k_mean(t, by="run", k=0, columns=["bpb"]), "k must be a positive integer"),
        (lambda t: sj.datasets.skip_first(t, by="run", fraction=1.0), r"fraction must be in \[0, 1\)"),
        (lambda t: sj.datasets.moving_average(t, by="run", window=2.5, columns=["bpb"]), "window"),
        (lambda t: sj.datasets.final_rows(t, by="model"), "column 'model' \\(for by\\) not found"),
        (lambda t: sj.datasets.last_k_mean(t, by="run", k=2, columns=["loss"]), "column 'loss' \\(for columns\\)"),
    ],
)
def test_bad_arguments_are_one_clear_data_error(log, call, match):
    with pytest.raises(sj.DataError, match=match):
        call(log)

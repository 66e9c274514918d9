"""Any table in, one kind of table out: pandas, polars, pyarrow, xarray, dicts and arrays, in fit and in predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scalejax as sj

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
xr = pytest.importorskip("xarray")

XD = {"N": "N", "D": "D"}
NEW = {"N": [1e9, 7e10], "D": [2e10, 1.4e12]}


@pytest.fixture(scope="module")
def frame():
    return sj.datasets.load_example("chinchilla").iloc[::2].reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(frame, chinchilla_starts):
    return sj.fit("chinchilla", frame, x=XD, y="loss", starts=chinchilla_starts)


def _tables(frame):
    return {
        "polars": pl.from_pandas(frame),
        "pyarrow": pa.Table.from_pandas(frame),
        "dict": {k: frame[k].to_list() for k in frame.columns},
        "xarray": xr.Dataset.from_dataframe(frame),
    }


def test_the_same_fit_from_every_kind_of_table(frame, reference, chinchilla_starts):
    for kind, table in _tables(frame).items():
        fit = sj.fit("chinchilla", table, x=XD, y="loss", starts=chinchilla_starts)
        assert fit.params == reference.params, kind
        assert fit.objective == reference.objective, kind
    arrays = sj.fit(
        "chinchilla",
        x={"N": frame.N.to_numpy(), "D": frame.D.to_numpy()},
        y=frame.loss.to_numpy(),
        starts=chinchilla_starts,
    )
    assert arrays.params == reference.params


def test_predictions_take_any_table_and_keep_the_callers_index(reference):
    new = pd.DataFrame(NEW, index=pd.Index(["1B", "70B"], name="model"))
    expected = reference.predict(new)
    assert list(expected.index) == ["1B", "70B"] and expected.index.name == "model"
    assert list(expected.columns) == ["y", "lo", "hi", "pred_lo", "pred_hi", "distance"]
    for table in (pl.DataFrame(NEW), pa.table(NEW), NEW):
        out = reference.predict(table)
        assert isinstance(out, pd.DataFrame)
        np.testing.assert_array_equal(out.to_numpy(), expected.to_numpy())
        assert list(out.index) == [0, 1]
    # An xarray Dataset's dimension coordinate is the index, as its to_dataframe() gives it.
    ds = xr.Dataset({"N": ("model", NEW["N"]), "D": ("model", NEW["D"])}, coords={"model": ["1B", "70B"]})
    out = reference.predict(ds)
    assert list(out.index) == ["1B", "70B"]
    np.testing.assert_array_equal(out.to_numpy(), expected.to_numpy())


def test_every_estimate_predicts_a_dataframe_with_the_callers_index(reference, example_bootstrap):
    post = sj.posterior("chinchilla", reference.data, method="laplace", draws=100, init=reference)
    new = pd.DataFrame(NEW, index=[10, 20])
    for draws in (reference, example_bootstrap, post):
        for table in (new, pl.from_pandas(new)):
            out = draws.predict(table)
            assert isinstance(out, pd.DataFrame) and list(out.columns) == [
                "y",
                "lo",
                "hi",
                "pred_lo",
                "pred_hi",
                "distance",
            ]
            assert list(out.index) == ([10, 20] if isinstance(table, pd.DataFrame) else [0, 1])
            assert np.all(out.lo <= out.y) and np.all(out.y <= out.hi)


def test_errors_name_the_column_and_rows_whatever_the_table(frame):
    bad = frame.copy()
    bad.loc[[3, 7], "N"] = -1.0
    for table in (pl.from_pandas(bad), pa.Table.from_pandas(bad)):
        with pytest.raises(sj.DataError, match=r"column 'N' has 2 non-positive values \(rows 3, 7\)"):
            sj.fit("chinchilla", table, x=XD, y="loss")
    with pytest.raises(
        sj.DataError, match=r"column 'tokens' \(for x\['D'\]\) not found; the table has columns 'N', 'D'"
    ):
        sj.fit("chinchilla", pl.from_pandas(frame), x={"N": "N", "D": "tokens"}, y="loss")
    missing = pl.from_pandas(frame).with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("loss")).alias("loss")
    )
    with pytest.raises(sj.DataError, match=r"column 'loss' has 1 missing or infinite values \(row 4\)"):
        sj.fit("chinchilla", missing, x=XD, y="loss")
    text = pl.from_pandas(frame.astype({"D": str})).with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("many")).otherwise(pl.col("D")).alias("D")
    )
    with pytest.raises(sj.DataError, match=r"column 'D' has 1 non-numeric values \(row 2: 'many'\)"):
        sj.fit("chinchilla", text, x=XD, y="loss")


def test_prediction_errors_with_other_tables(reference):
    with pytest.raises(sj.DataError, match="new inputs lack 'D'"):
        reference.predict(pl.DataFrame({"N": [1e9]}))
    with pytest.raises(sj.DataError, match="got ndarray"):
        reference.predict(np.ones((2, 2)))


def test_groups_and_trials_columns_from_polars():
    rng = np.random.default_rng(0)
    x = np.tile(np.geomspace(1.0, 1e3, 8), 2)
    trials = np.full(16, 100)
    k = rng.binomial(trials, np.clip(0.8 * x**-0.2, 0, 1))
    table = pl.DataFrame({"x": x, "k": k, "n": trials, "task": ["a"] * 8 + ["b"] * 8})
    post = sj.posterior(
        "powerlaw", table, x={"x": "x"}, y="k", likelihood="binomial", trials="n", group="task", method="laplace"
    )
    assert post.labels == ("a", "b")
    np.testing.assert_array_equal(post.trials, trials)

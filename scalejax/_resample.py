"""Bootstrap resamples as point weights (or, for residual resampling, targets), made from the seed block by block.

A bootstrap of a million resamples of a million points cannot hold its
weights at once. `Resampler` makes the weights of any range of resamples
`[start, stop)` on demand: resamples are grouped in fixed blocks, each drawn
from its own random stream (`SeedSequence(seed, spawn_key=(block,))`), so a
resample's weights depend only on the seed, the data and its index, never on
how the solver chunks the lanes, how many devices or hosts there are, or in
what order the ranges are asked for.
"""

from __future__ import annotations

import numpy as np

from ._data import Data
from ._errors import DataError, ScalejaxError
from ._noise import resample_targets

__all__ = ["SCHEMES", "Resampler", "resample_weights", "uniform_counts"]

SCHEMES = ("rows", "groups", "bayesian", "residual", "wild")
# Numbers drawn per block (resamples x points): a block is a few MB whatever the data's size.
_BLOCK_NUMBERS = 1 << 18
_MAX_BLOCK = 1024


def resample_weights(data: Data, n: int, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """`(n, n_points)` weights of `n` resamples (`rows`, `groups` or `bayesian`) from one generator
    (`residual` and `wild` keep the data's weights and resample targets instead).

    All at once, from a caller's generator; `Resampler` makes them block by
    block from a seed instead, in bounded memory.
    """
    base = data.weights
    if scheme == "rows":
        live = np.flatnonzero(base > 0)
        counts = uniform_counts(rng, live.size, n)
        out = np.zeros((n, data.n))
        out[:, live] = counts
        return out * base
    if scheme == "bayesian":
        live = np.flatnonzero(base > 0)
        out = np.zeros((n, data.n))
        out[:, live] = rng.dirichlet(np.ones(live.size), size=n) * live.size
        return out * base
    if scheme == "groups":
        codes, n_groups = _group_codes(data)
        counts = uniform_counts(rng, n_groups, n)
        return counts[:, codes] * base
    if scheme in ("residual", "wild"):
        return np.broadcast_to(base, (n, data.n)).copy()
    raise ScalejaxError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def uniform_counts(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """`n` draws of Multinomial(k, uniform over k): how often each of k items is picked in k draws.

    Counted from `k` uniform picks per row: the same distribution as
    `rng.multinomial`, about 10x faster (it draws k binomials in sequence per row).
    """
    picks = rng.integers(0, k, size=(n, k)) + k * np.arange(n)[:, None]
    return np.bincount(picks.ravel(), minlength=n * k).reshape(n, k).astype(np.float64)


def _group_codes(data: Data) -> tuple[np.ndarray, int]:
    if data.groups is None:
        raise DataError("scheme 'groups' needs a group column: pass group='run' (or the column naming each cluster)")
    labels, codes = np.unique(data.groups.astype(str), return_inverse=True)
    if labels.size < 2:
        raise DataError(
            f"scheme 'groups' needs at least 2 groups; column {data.columns.get('group')!r} has {labels.size}"
        )
    return codes, labels.size


class Resampler:
    """The resamples of one bootstrap: weights (or residual-scheme targets) of any range of them, from the seed.

    Args:
        data: the data resampled.
        scheme: `"rows"` (multinomial counts over the weighted points), `"groups"`
            (multinomial counts over the groups of `data.groups`), `"bayesian"`
            (flat Dirichlet weights times the number of points), `"residual"`
            (fitted values plus standardised residuals drawn with replacement) or
            `"wild"` (each run's own residual times a random sign); for the last
            two the weights stay the data's (see `scalejax._noise.resample_targets`).
        seed: the bootstrap's seed.
        fitted: `(n,)` fitted values on the fitted scale (`"residual"` and `"wild"`).
        residuals: `(n,)` residuals at the fit, target minus fitted (`"residual"` and `"wild"`).
        scale: `(n,)` noise scale per run for `"residual"` (None: constant).
        leverage: `(n,)` leverages of the runs (None: 0).

    Example:
        >>> import scalejax as sj
        >>> from scalejax._fit import make_data
        >>> from scalejax._objectives import make_loss
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> law, loss = sj.laws.get("chinchilla"), make_loss()
        >>> data = make_data(law, frame, {"N": "N", "D": "D"}, "loss", None, None, loss)
        >>> r = Resampler(data, "rows", seed=0)
        >>> bool((r.weights(0, 10)[3:7] == r.weights(3, 7)).all())
        True
    """

    def __init__(self, data: Data, scheme: str, seed: int, *, fitted=None, residuals=None, scale=None, leverage=None):
        if scheme not in SCHEMES:
            raise ScalejaxError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
        self.scheme, self.seed, self.n = scheme, int(seed), data.n
        self.base = np.asarray(data.weights, dtype=np.float64)
        self.live = np.flatnonzero(self.base > 0)
        if scheme == "groups":
            self.codes, self.n_groups = _group_codes(data)
        self.targeted = scheme in ("residual", "wild")
        if self.targeted:
            if fitted is None or residuals is None:
                raise ScalejaxError(f"scheme {scheme!r} needs the fitted values and residuals of the fit")
            self.fitted = np.asarray(fitted, dtype=np.float64)
            self.residuals = np.asarray(residuals, dtype=np.float64)
            self.scale, self.leverage = scale, leverage
        self.block = int(np.clip(_BLOCK_NUMBERS // max(self.n, 1), 1, _MAX_BLOCK))
        self._cache: tuple[int, np.ndarray] | None = None

    def weights(self, start: int, stop: int) -> np.ndarray:
        """`(stop - start, n)` point weights of resamples `[start, stop)`."""
        if self.targeted:
            return np.broadcast_to(self.base, (stop - start, self.n)).copy()
        return self._rows(start, stop)

    def targets(self, start: int, stop: int) -> np.ndarray:
        """`(stop - start, n)` targets (fitted scale) of resamples `[start, stop)` (`"residual"` and `"wild"`)."""
        if not self.targeted:
            raise ScalejaxError(
                f"scheme {self.scheme!r} resamples weights; only 'residual' and 'wild' resample targets"
            )
        return self._rows(start, stop)

    def _rows(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop:
            raise ScalejaxError(f"resamples [{start}, {stop}) is not a range of non-negative indices")
        out = np.empty((stop - start, self.n))
        if stop == start:
            return out
        for b in range(start // self.block, (stop - 1) // self.block + 1):
            rows = self._block(b)
            lo, hi = max(start, b * self.block), min(stop, (b + 1) * self.block)
            out[lo - start : hi - start] = rows[lo - b * self.block : hi - b * self.block]
        return out

    def _block(self, b: int) -> np.ndarray:
        """The rows of block `b`, drawn from its own stream (the last block is kept: ranges often share one)."""
        if self._cache is not None and self._cache[0] == b:
            return self._cache[1]
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(b,)))
        m = self.block
        if self.scheme == "rows":
            rows = np.zeros((m, self.n))
            rows[:, self.live] = uniform_counts(rng, self.live.size, m)
            rows *= self.base
        elif self.scheme == "bayesian":
            rows = np.zeros((m, self.n))
            rows[:, self.live] = rng.dirichlet(np.ones(self.live.size), size=m) * self.live.size
            rows *= self.base
        elif self.scheme == "groups":
            rows = uniform_counts(rng, self.n_groups, m)[:, self.codes] * self.base
        else:
            rows = resample_targets(
                self.fitted, self.residuals, self.base, m, self.scheme, rng, scale=self.scale, leverage=self.leverage
            )
        self._cache = (b, rows)
        return rows

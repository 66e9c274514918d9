"""Convergence diagnostics of MCMC draws: rank-normalised split R-hat, bulk and tail effective sample sizes.

Written here (NumPy only) because ArviZ is an optional dependency and
NumPyro has only the classic split R-hat and ESS. The definitions follow
Vehtari et al. 2021 and are tested against ArviZ's `rhat` and `ess`.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["ess_bulk", "ess_tail", "rhat", "summarize"]

# Too few draws to estimate anything: fewer than this many per chain gives NaN.
MIN_DRAWS = 4


def _split(x: np.ndarray) -> np.ndarray:
    """`(chains, draws)` -> `(2 chains, draws // 2)`: each chain's halves as separate chains (middle draw dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) of a flat array."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if uniq.size < values.size:  # ties: every member gets the mean of the ranks they span
        ranks = np.bincount(inverse, weights=ranks) / counts
        ranks = ranks[inverse]
    return ranks


_PPF = np.vectorize(NormalDist().inv_cdf, otypes=[np.float64])


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise: normal scores of the pooled ranks, `Phi^-1((r - 3/8) / (S + 1/4))` (Blom's offset)."""
    r = _ranks(x.reshape(-1))
    return _PPF((r - 0.375) / (x.size + 0.25)).reshape(x.shape)


def _classic_rhat(x: np.ndarray) -> float:
    n = x.shape[1]
    within = np.mean(np.var(x, axis=1, ddof=1))
    between = n * np.var(np.mean(x, axis=1), ddof=1)
    return float(np.sqrt((between / within + n - 1) / n))


def _valid(x: np.ndarray, min_chains: int = 1) -> bool:
    return x.ndim == 2 and x.shape[0] >= min_chains and x.shape[1] >= MIN_DRAWS and bool(np.all(np.isfinite(x)))


def rhat(x) -> float:
    """Rank-normalised split R-hat of one quantity's draws `(chains, draws)`.

    The larger of the split R-hat of the rank-normalised draws (bulk) and of
    the rank-normalised distances from the median (tails). NaN with fewer
    than 2 chains or 4 draws per chain, or non-finite draws; 1 for a constant.

    References:
        Vehtari, Gelman, Simpson, Carpenter and Buerkner 2021, Rank-normalization,
        folding, and localization: an improved R-hat for assessing convergence of MCMC,
        Bayesian Analysis 16(2), eqs. (3)-(4) and section 4.
    """
    x = np.asarray(x, dtype=np.float64)
    if not _valid(x, min_chains=2):
        return float("nan")
    if np.ptp(x) == 0:
        return 1.0
    split = _split(x)
    bulk = _classic_rhat(_z_scale(split))
    tail = _classic_rhat(_z_scale(np.abs(split - np.median(split))))
    return max(bulk, tail)


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of each chain (rows) at every lag, by FFT."""
    n = x.shape[1]
    centered = x - x.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(centered, n=size, axis=1)
    return np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    """Effective sample size of `(chains, draws)` draws with Geyer's initial monotone sequence.

    The autocorrelation combines chains through the multi-chain variance
    estimate (Vehtari et al. 2021, eq. (10)); the sum stops at the first
    negative sum of an even and an odd lag and is made monotone.
    """
    m, n = x.shape
    if np.ptp(x) == 0:
        return float(x.size)
    acov = _autocovariance(x)
    within = np.mean(acov[:, 0]) * n / (n - 1)
    var_plus = within * (n - 1) / n + (np.var(x.mean(axis=1), ddof=1) if m > 1 else 0.0)
    rho = 1.0 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Sums of consecutive pairs (even lag, next odd lag) up to lag n - 2, kept up to the first one that
    # is not positive (Geyer's initial positive sequence); the last pair's even lag still counts once.
    last_pair = (n - 1) // 2 - 1
    pairs = rho[: 2 * (last_pair + 1)].reshape(-1, 2).sum(axis=1)
    stop = np.flatnonzero(pairs <= 0)
    if stop.size:
        k = int(stop[0])
        extra = max(rho[2 * k], 0.0)
    else:  # the sequence ran to the last lag: that pair's even term counts once, whatever its sign
        k = last_pair
        extra = rho[2 * k]
    # ... made monotone (Geyer's initial monotone sequence).
    pairs = np.minimum.accumulate(pairs[:k])
    tau = -1.0 + 2.0 * pairs.sum() + extra
    # Antithetic chains can make tau tiny; the bound keeps ESS below S log10(S), as in Stan.
    tau = max(tau, 1.0 / np.log10(x.size))
    return float(x.size / tau)


def ess_bulk(x) -> float:
    """Bulk effective sample size: the ESS of the rank-normalised split chains (NaN when undefined).

    References:
        Vehtari et al. 2021 (see `rhat`), section 4.3.
    """
    x = np.asarray(x, dtype=np.float64)
    if not _valid(x):
        return float("nan")
    return _ess(_z_scale(_split(x)))


def ess_tail(x) -> float:
    """Tail effective sample size: the smaller ESS of the indicators of the 5% and 95% quantiles.

    It governs how well the ends of a 90% (and, roughly, a 95%) interval are
    estimated.

    References:
        Vehtari et al. 2021 (see `rhat`), section 4.3.
    """
    x = np.asarray(x, dtype=np.float64)
    if not _valid(x):
        return float("nan")
    split = _split(x)
    out = []
    for q in (0.05, 0.95):
        indicator = (split <= np.quantile(x, q)).astype(np.float64)
        out.append(_ess(indicator))
    return min(out)


def summarize(by_chain: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """`rhat`, `ess_bulk` and `ess_tail` of every quantity (name -> `(chains, draws)`), each a dict by name."""
    return {
        "rhat": {k: rhat(v) for k, v in by_chain.items()},
        "ess_bulk": {k: ess_bulk(v) for k, v in by_chain.items()},
        "ess_tail": {k: ess_tail(v) for k, v in by_chain.items()},
    }

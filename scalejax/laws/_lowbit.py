"""Low-bit post-training quantisation of under-trained models: the law of Ouyang et al. (2024)."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param


def _lowbit_log(p, x):
    return jnp.log(p["k"]) + p["beta"] * jnp.log(x["D"]) - p["alpha"] * jnp.log(x["N"]) - p["gamma"] * jnp.log(x["P"])


lowbit_ptq = Law(
    name="lowbit_ptq",
    fn=lambda p, x: jnp.exp(_lowbit_log(p, x)),
    log_fn=_lowbit_log,
    params=(
        Param("k", lower=0, grid=(1e-3, 1e-1, 10.0), doc="scale"),
        Param("alpha", grid=(0.1, 0.3), doc="model-size exponent (bigger models lose less)"),
        Param("beta", grid=(0.3, 0.6), doc="training-token exponent (more trained models lose more)"),
        Param("gamma", grid=(2.0, 6.0), doc="bit-width exponent"),
    ),
    inputs=("N", "D", "P"),
    equation="Delta_q L(N, D, P) = k D^beta / (N^alpha P^gamma)",
    reference=(
        "Ouyang et al. 2024, 'Low-Bit Quantization Favors Undertrained LLMs: Scaling Laws for Quantized LLMs "
        "with 100T Training Tokens' (the unified law of Section 3)"
    ),
)
"""Ouyang et al.'s loss increase from post-training quantisation to P bits: `k D^beta / (N^alpha P^gamma)`.

Models trained on more tokens (relative to their size) lose more when
quantised: the degradation grows as `D^beta` and falls as `N^alpha` and `P^gamma`.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("lowbit_ptq").param_names
    ('k', 'alpha', 'beta', 'gamma')

References:
    Ouyang et al. 2024, Low-Bit Quantization Favors Undertrained LLMs: Scaling Laws for Quantized LLMs with
    100T Training Tokens. Written from memory of the paper (its text could not be retrieved here), so the
    equation number is not given.
"""

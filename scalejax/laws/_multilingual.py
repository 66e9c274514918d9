"""Multilingual translation: one power law per language pair, one exponent shared by all (Fernandes et al. 2023)."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from .._law import Law, Param, log_sum_exp


def _pair_log(p, x):
    return log_sum_exp(jnp.log(p["beta"]) - p["alpha"] * jnp.log(x["N"]), jnp.log(p["L_inf"]))


multilingual_nmt = Law(
    name="multilingual_nmt",
    fn=lambda p, x: jnp.exp(_pair_log(p, x)),
    log_fn=_pair_log,
    params=(
        Param("beta", lower=0, grid=(1.0, 30.0, 1e3, 3e4), doc="multiplicative factor of the pair (set by its weight)"),
        Param("alpha", lower=0, grid=(0.1, 0.25, 0.5), doc="exponent in model size (shared across pairs)"),
        Param("L_inf", lower=0, grid=(0.3, 1.0, 2.0), doc="irreducible loss of the pair"),
    ),
    inputs=("N",),
    equation="L_i(N) = beta_i N^-alpha + L_inf_i, alpha shared by every language pair i",
    reference="Fernandes et al. 2023, 'Scaling Laws for Multilingual Neural Machine Translation', Section 4",
)
"""One language pair of Fernandes et al.'s multilingual law: `L_i(N) = beta_i N^-alpha + L_inf_i`.

Fernandes et al. find that changing a pair's weight in the training mixture
changes only its multiplicative factor `beta_i`: the exponent `alpha` is
common. `multilingual_nmt_law(pairs)` builds the law of several pairs (or
pair-and-weight mixtures) fitted together with one shared `alpha`.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("multilingual_nmt").param_names
    ('beta', 'alpha', 'L_inf')

References:
    Fernandes, Ghorbani, Garcia, Freitag and Firat 2023, Scaling Laws for Multilingual Neural Machine
    Translation (ICML 2023), Section 4. Written from memory of the paper (its text could not be retrieved
    here): the per-pair power law in model size with a weight-dependent factor and an exponent that does
    not depend on the weighting. The paper's joint form, which maps a mixture weight to an effective
    parameter fraction, is not implemented.
"""


def multilingual_nmt_law(pairs: Sequence, *, shared: Sequence[str] = ("alpha",)):
    """Several language pairs (or pair-and-weight mixtures) fitted together with one exponent.

    Args:
        pairs: the group labels (each data point's pair, mapped like any input:
            `x={"N": "params", "group": "pair"}`).
        shared: the parameters common to all pairs (the exponent by default).

    Returns:
        A `JointLaw` of `multilingual_nmt`: `beta_<pair>`, `L_inf_<pair>` per
        pair and one `alpha`.

    Example:
        >>> import scalejax as sj
        >>> sj.laws.multilingual_nmt_law(["en_de", "en_fr"]).param_names
        ('beta_en_de', 'beta_en_fr', 'alpha', 'L_inf_en_de', 'L_inf_en_fr')

    References:
        Fernandes et al. 2023, Scaling Laws for Multilingual Neural Machine Translation, Section 4.
    """
    from .._joint import joint  # late: `import scalejax.laws` needs no joint machinery

    return joint(multilingual_nmt, groups=pairs, shared=shared)

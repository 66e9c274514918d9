"""Regenerate the embedded synthetic example tables.

    python -c "from scalejax.datasets._generate import main; main()"

The tables are synthetic: drawn from published fitted laws on realistic
designs, with a fixed seed, so anyone can check how they were made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent

# Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt"), Table 1:
# their refit of Hoffmann et al.'s Approach 3 on the digitised data.
CHINCHILLA_TRUTH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
CHINCHILLA_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)
# Standard deviation of log loss around the law, about what real final losses show.
CHINCHILLA_NOISE = 0.015


def chinchilla_example(seed: int = 20220329) -> pd.DataFrame:
    """9 isoFLOP budgets x 9 model sizes from 1/8x to 8x the compute-optimal size, with log-normal noise."""
    rng = np.random.default_rng(seed)
    p = CHINCHILLA_TRUTH
    a = p["beta"] / (p["alpha"] + p["beta"])
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    rows = []
    for c in CHINCHILLA_BUDGETS:
        n_opt = g * (c / 6) ** a
        for n in n_opt * np.geomspace(1 / 8, 8, 9):
            n = float(f"{n:.3g}")
            d = c / (6 * n)
            loss = p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
            rows.append(
                {
                    "N": n,
                    "D": float(f"{d:.4g}"),
                    "C": c,
                    "loss": loss * np.exp(CHINCHILLA_NOISE * rng.standard_normal()),
                }
            )
    frame = pd.DataFrame(rows)
    frame["loss"] = frame["loss"].round(5)
    return frame


def main() -> None:
    chinchilla_example().to_csv(HERE / "chinchilla_synthetic.csv", index=False)


if __name__ == "__main__":
    main()

"""`import scalejax` loads nothing heavy; every public name loads on first use and is the real object."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import scalejax as sj

HEAVY = ("jax", "pandas", "numpy", "equinox", "optax", "numpyro", "matplotlib", "scipy")


def test_import_loads_no_heavy_dependency():
    code = f"import sys, scalejax; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
    assert done.stderr == "", done.stderr  # no import-time warning


def test_every_public_name_loads_on_first_use_as_the_object_its_module_defines():
    for name in sj.__all__:
        module, attribute = sj._LAZY[name]
        value = getattr(sj, name)
        source = importlib.import_module(f"scalejax.{module}")
        assert value is (source if attribute is None else getattr(source, attribute)), name
    assert set(sj.__all__) == set(sj._LAZY)
    assert set(sj.__all__) <= set(dir(sj))


def test_from_import_and_star_import_in_a_fresh_interpreter():
    code = (
        "from scalejax import fit, Fit, ScalejaxError, laws\n"
        "from scalejax import *\n"
        "assert callable(fit) and issubclass(ScalejaxError, Exception) and laws.get('chinchilla')\n"
        "assert posterior.__module__.startswith('scalejax.bayes')\n"
        "import scalejax\n"
        "try:\n"
        "    scalejax.no_such_name\n"
        "except AttributeError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "has no attribute 'no_such_name'" in done.stdout


def test_a_command_line_fit_loads_neither_matplotlib_nor_numpyro(tmp_path, example_frame):
    csv = tmp_path / "runs.csv"
    example_frame.to_csv(csv, index=False)
    code = (
        "import sys\n"
        "from scalejax import cli\n"
        f"sys.argv = ['scalejax', 'fit', {str(csv)!r}, '--law', 'chinchilla', '--x', 'N=N', '--x', 'D=D', '--y', 'loss']\n"
        "try:\n"
        "    cli.run()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "print('LOADED', sorted(m for m in ('matplotlib', 'numpyro', 'arviz') if m in sys.modules))\n"
    )
    env = {**os.environ, "SCALEJAX_COMPILE_CACHE": "0", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOADED []" in done.stdout, done.stdout[-2000:]


def test_help_and_version_of_the_command_import_neither_jax_nor_pandas():
    for flag in ("--help", "--version"):
        code = (
            "import sys\n"
            "from scalejax import cli\n"
            f"sys.argv = ['scalejax', {flag!r}]\n"
            "try:\n"
            "    cli.run()\n"
            "except SystemExit as done:\n"
            "    assert not done.code, done.code\n"
            "print('LOADED', sorted(m for m in ('jax', 'pandas', 'numpy') if m in sys.modules))\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "LOADED []" in done.stdout, (flag, done.stdout[-2000:])

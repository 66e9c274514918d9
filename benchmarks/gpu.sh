#!/usr/bin/env bash
# Run scalejax's speed benchmarks on a GPU machine and write their results to one folder, in a few minutes.
#
#   bash benchmarks/gpu.sh [OUT_DIR]
#
# OUT_DIR defaults to $OUT, else benchmarks/gpu-results. The real data are read from $DATA (default
# ../shared/data; on a machine without it, copy chinchilla_epoch/ into a folder and point DATA at it).
# Needs a Python with jax (CUDA), numpyro, equinox, optax, pandas, scipy, tqdm and optimistix; scalejax
# itself is installed from this checkout without touching the network. Each step has its own time
# limit, so one slow step cannot eat the others' time; every step's output goes to OUT_DIR/<step>.md,
# its errors to OUT_DIR/<step>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/gpu-results}}"
DATA="${DATA:-../shared/data}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1

if ! "$PY" -c "import scalejax" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUT_DIR/install.log" 2>&1 \
        || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

{
    echo "# Environment"
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi: not found"
    "$PY" - <<'EOF'
import os, platform, jax, numpy, scipy
print(f"python {platform.python_version()}, jax {jax.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}")
print(f"backend {jax.default_backend()}, devices {jax.devices()}, cpus {os.cpu_count()}, load {os.getloadavg()}")
try:
    import optimistix
    print(f"optimistix {optimistix.__version__}")
except ImportError:
    print("optimistix: not installed")
EOF
} >"$OUT_DIR/env.md" 2>&1

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$OUT_DIR/$name.md" 2>"$OUT_DIR/$name.log"
    echo "   exit $? ($(wc -l <"$OUT_DIR/$name.md") lines)"
}

CHIN="$DATA/chinchilla_epoch/svg_extracted_data.csv"
# The grid fit: both strategies on the GPU, SciPy on the host's CPU (tight tolerances on all 4,500
# starts take about a minute; finite differences on 100 starts, extrapolated).
step fit_grid 240 "$PY" benchmarks/fit_grid.py --data "$CHIN" --fd-starts 100 --repeats 3
# The bootstrap against optimistix's LM, vmapped over the same resamples, and at large n.
step bootstrap_optimistix 180 "$PY" benchmarks/bootstrap_optimistix.py --data "$CHIN" --n 4000
step bootstrap_scale 180 "$PY" benchmarks/bootstrap_scale.py --data "$CHIN" --n 4000 100000 1000000
# Many small fits at once.
step batch_tasks 120 "$PY" benchmarks/batch_tasks.py --tasks 300 --scipy-tasks 20
echo "results in $OUT_DIR"

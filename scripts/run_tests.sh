#!/usr/bin/env bash
# The full test suite on CPU: installs the pinned stack into .venv if needed, then runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/run_tests.sh -m "not slow"`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_env.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# Sleeping (not spinning) OpenMP threads: spinning ones make small convs many times slower on a shared 2-core machine.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec .venv/bin/python -m pytest "$@"

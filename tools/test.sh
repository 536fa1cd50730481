#!/usr/bin/env bash
# The whole test suite: installs on first use, then shellcheck on every shell script and pytest.
# Extra arguments go to pytest, e.g. bash tools/test.sh -k config
# WENET_LLM_TEST_WORKERS sets the number of parallel pytest workers (default: one per core).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${root}"
bash tools/install.sh
# shellcheck source=path.sh
. ./path.sh

# Only the tests need shellcheck, so it is installed here rather than by install.sh.
if ! command -v shellcheck > /dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
    echo "test.sh: installing shellcheck"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck > /dev/null
  else
    echo "test.sh: shellcheck is missing; install it, e.g.: sudo apt-get install -y shellcheck" >&2
    exit 1
  fi
fi

mapfile -t scripts < <(git ls-files '*.sh' '.ci/run' 2> /dev/null || find . -name '*.sh' -not -path './.venv/*')
echo "test.sh: shellcheck on ${#scripts[@]} scripts"
shellcheck -x "${scripts[@]}"

# One pytest worker per core (pytest-xdist), each with one intra-op thread: several workers with a
# thread per core each would oversubscribe the cores and run slower than one worker.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python -m pytest -q -n "${WENET_LLM_TEST_WORKERS:-auto}" tests "$@"

#!/usr/bin/env bash
# The whole test suite: installs on first use, then shellcheck on every shell script and pytest.
# Extra arguments go to pytest, e.g. bash tools/test.sh -k config
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${root}"
bash tools/install.sh
# shellcheck source=path.sh
. ./path.sh

mapfile -t scripts < <(git ls-files '*.sh' '.ci/run' 2> /dev/null || find . -name '*.sh' -not -path './.venv/*')
echo "test.sh: shellcheck on ${#scripts[@]} scripts"
shellcheck -x "${scripts[@]}"

python -m pytest -q tests "$@"

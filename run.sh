#!/usr/bin/env bash
# The demo: installs on first use, then runs every stage of the demo recipe (examples/demo/s0)
# on the generated bilingual corpus, on CPU; stage 7 copies its results.json to the repository root.
# Options go to the recipe, e.g. bash run.sh --stop_stage 0
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "${root}/tools/install.sh"
cd "${root}/examples/demo/s0"
exec bash run.sh --results_json "${root}/results.json" "$@"

#!/usr/bin/env bash
# Install wenet_llm into ./.venv, with the system tools the demo needs (shellcheck, needed only by
# the tests, is installed by tools/test.sh).
# Idempotent: a stamp keyed on setup.py and TORCH_SPEC makes a second run return at once.
#
#   TORCH_SPEC  the torch requirement installed in the same pip command as everything else
#               (default "torch==2.13.0"). Which build that gets depends on the package index: PyPI's
#               Linux wheels are CUDA builds. To choose, name the build and an index that has it, e.g.
#               TORCH_SPEC="torch==2.13.0+cpu" PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
#
# bash tools/install.sh --check changes nothing: exit 0 when the install is complete and current, else 1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${root}/.venv"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
python="${PYTHON:-python3}"
check_only=false
[ "${1:-}" != --check ] || check_only=true

missing=()
for tool in espeak-ng sox; do
  command -v "${tool}" > /dev/null || missing+=("${tool}")
done
stamp_value="$(sha256sum "${root}/setup.py" | cut -d' ' -f1) ${torch_spec}"
stamp="${venv}/.wenet_llm_install_stamp"
if ${check_only}; then
  [ ${#missing[@]} -eq 0 ] && [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${stamp_value}" ]
  exit
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
    echo "install.sh: installing system tools: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox libsox-fmt-all > /dev/null
  else
    echo "install.sh: missing system tools: ${missing[*]}" >&2
    echo "install.sh: install them, e.g.: sudo apt-get install -y espeak-ng sox libsox-fmt-all" >&2
    exit 1
  fi
fi

if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${stamp_value}" ]; then
  exit 0
fi

if ! "${python}" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "install.sh: Python >= 3.10 is required (${python} is $("${python}" --version 2>&1))" >&2
  exit 1
fi
[ -x "${venv}/bin/python" ] || "${python}" -m venv "${venv}"
echo "install.sh: installing wenet_llm into ${venv} (${torch_spec}); this takes a few minutes the first time"
# torch goes in the same command as everything else: alone, peft/lhotse would pull a multi-GB CUDA build.
"${venv}/bin/python" -m pip install --quiet "${torch_spec}" -e "${root}[dev]"
echo "${stamp_value}" > "${stamp}"
echo "install.sh: done"

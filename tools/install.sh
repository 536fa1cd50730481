#!/usr/bin/env bash
# Install wenet_llm into ./.venv, with the system tools the demo needs (shellcheck, needed only by
# the tests, is installed by tools/test.sh).
# Versions: tools/constraints.txt pins every package `pip install -e .[dev]` needs to the versions the
# tests passed with (pip install -c; tools/update_constraints.py writes it and says how to update it).
# The pins hold for the Python version they were made with (the file's "# python X.Y" line); with
# another Python they are not used and pip picks within setup.py's ranges, with a warning.
# Idempotent: a stamp keyed on setup.py, the constraints and TORCH_SPEC makes a second run return at once.
#
#   TORCH_SPEC  the torch requirement installed in the same pip command as everything else
#               (default "torch==2.13.0"). Which build that gets depends on the package index: PyPI's
#               Linux wheels are CUDA builds. To choose, name the build and an index that has it, e.g.
#               TORCH_SPEC="torch==2.13.0+cpu" PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
#               The default is the torch the tests passed with (the "# torch" line of tools/constraints.txt).
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
constraints="${root}/tools/constraints.txt"
if [ ! -f "${constraints}" ]; then
  echo "install.sh: ${constraints} is missing; restore it (git checkout tools/constraints.txt)" >&2
  exit 1
fi
# The Python of the environment: the venv's when it exists, else the one that will make it.
py_exe="${python}"
[ ! -x "${venv}/bin/python" ] || py_exe="${venv}/bin/python"
if ! py_version=$("${py_exe}" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2> /dev/null); then
  echo "install.sh: cannot run ${py_exe}; install Python >= 3.10 or name one: PYTHON=/path/to/python3 bash tools/install.sh" >&2
  exit 1
fi
pinned_python=$(sed -n 's/^# python //p' "${constraints}")
pins=(-c "${constraints}")
pins_used="constraints=$(sha256sum "${constraints}" | cut -d' ' -f1)"
if [ "${py_version}" != "${pinned_python}" ]; then
  pins=()
  pins_used+=" not-used-with-python${py_version}"
fi
stamp_value="$(sha256sum "${root}/setup.py" | cut -d' ' -f1) ${pins_used} ${torch_spec}"
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

if ! "${py_exe}" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "install.sh: Python >= 3.10 is required (${py_exe} is $("${py_exe}" --version 2>&1))" >&2
  exit 1
fi
if [ ${#pins[@]} -eq 0 ]; then
  echo "install.sh: warning: the pinned versions (tools/constraints.txt) were tested with Python ${pinned_python}," \
    "${py_exe} is Python ${py_version}: installing within setup.py's version ranges instead, a set nobody tested." >&2
  echo "install.sh: for the tested set: rm -rf ${venv}; PYTHON=python${pinned_python} bash tools/install.sh" >&2
fi
[ -x "${venv}/bin/python" ] || "${python}" -m venv "${venv}"
echo "install.sh: installing wenet_llm into ${venv} (${torch_spec}); this takes a few minutes the first time"
# torch goes in the same command as everything else: alone, peft/lhotse would pull a multi-GB CUDA build.
# It is not in the constraints file, so TORCH_SPEC alone chooses its build.
"${venv}/bin/python" -m pip install --quiet "${pins[@]}" "${torch_spec}" -e "${root}[dev]"
echo "${stamp_value}" > "${stamp}"
echo "install.sh: done"

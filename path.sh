# shellcheck shell=bash
# Environment for wenet_llm: the virtual environment, a UTF-8 locale and thread counts.
WENET_LLM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export WENET_LLM_ROOT
if [ -f "${WENET_LLM_ROOT}/.venv/bin/activate" ]; then
  # shellcheck source=/dev/null
  . "${WENET_LLM_ROOT}/.venv/bin/activate"
elif ! python3 -c 'import wenet_llm' 2> /dev/null; then  # an environment of the user's own also works
  echo "path.sh: no virtual environment at ${WENET_LLM_ROOT}/.venv and no wenet_llm in the active Python;" \
    "run: bash ${WENET_LLM_ROOT}/tools/install.sh" >&2
  return 1
fi
export LC_ALL=C.UTF-8 LANG=C.UTF-8 PYTHONIOENCODING=UTF-8 PYTHONUNBUFFERED=1
# One intra-op thread pool per core; data-loader workers set their own to 1.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS MKL_NUM_THREADS=${OMP_NUM_THREADS}
# Nothing is ever fetched from a model hub: models load from local directories.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

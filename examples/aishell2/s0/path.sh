# shellcheck shell=bash
# Recipe environment: finds the wenet_llm toolkit and sources its path.sh (virtual environment,
# locale, threads). Inside the repository the toolkit is three folders up. A recipe copied elsewhere
# (the usual start of a new corpus: cp -r examples/demo/s0 /my/recipe) finds it through
# $WENET_LLM_ROOT, or through the wenet_llm package of the active Python environment (pip install -e).
_recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_toolkit=$(cd "${_recipe_dir}/../../.." && pwd)
if [ ! -f "${_toolkit}/tools/recipe_lib.sh" ]; then
  _toolkit=${WENET_LLM_ROOT:-}
fi
if [ -z "${_toolkit}" ] && command -v python3 > /dev/null; then
  # An editable install's package lies in the repository, beside tools/.
  _toolkit=$(python3 -c 'import pathlib, wenet_llm; print(pathlib.Path(wenet_llm.__file__).resolve().parents[1])' \
    2> /dev/null) || _toolkit=""
fi
if [ -z "${_toolkit}" ] || [ ! -f "${_toolkit}/tools/recipe_lib.sh" ]; then
  {
    echo "path.sh: cannot find the wenet_llm toolkit for the recipe in ${_recipe_dir}"
    [ -z "${WENET_LLM_ROOT:-}" ] || echo "path.sh: WENET_LLM_ROOT=${WENET_LLM_ROOT} holds no tools/recipe_lib.sh"
    echo "path.sh: a recipe outside the repository needs: export WENET_LLM_ROOT=/path/to/wenet_llm"
    echo "path.sh: (the clone holding tools/ and path.sh), or the Python environment of an editable install active."
    echo "path.sh: to start a new recipe: cp -r \$WENET_LLM_ROOT/examples/demo/s0 /my/recipe; cd /my/recipe;"
    echo "path.sh: edit its conf/ and local/, then: WENET_LLM_ROOT=/path/to/wenet_llm bash run.sh --help"
  } >&2
  unset _recipe_dir _toolkit
  return 1
fi
# shellcheck source=../../../path.sh
. "${_toolkit}/path.sh"
unset _recipe_dir _toolkit

# shellcheck shell=bash
# Recipe environment: the toolkit's own path.sh (virtual environment, locale, threads).
# shellcheck source=../../../path.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/path.sh"

#!/usr/bin/env bash
# AISHELL-1 dev/test as extra Mandarin test sets of the AISHELL-2 recipe, written as aishell1/{dev,test}
# (lhotse's recipe also reads the AISHELL-1 train part, but only dev and test are written).
# Usage: local/aishell1_test_sets.sh AISHELL1_DIR DATA VALIDATE_CONFIG EXP
set -euo pipefail
[ $# -eq 4 ] || { echo "Usage: $0 AISHELL1_DIR DATA VALIDATE_CONFIG EXP" >&2; exit 1; }
aishell1_dir=$1 data=$2 validate_config=$3 exp=$4
mkdir -p "${exp}/data_prep/log"
python -m wenet_llm.bin.prepare_corpus --corpus aishell --corpus-dir "${aishell1_dir}" --out "${data}/aishell1" \
  --parts dev test --config "${validate_config}" 2>&1 | tee "${exp}/data_prep/log/prepare_aishell1.log"

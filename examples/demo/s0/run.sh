#!/usr/bin/env bash
# Demo recipe: the whole wenet_llm pipeline on a bilingual corpus generated with espeak-ng, on CPU.
# Stage numbers are shared by every recipe:
#   0 data preparation  1 tokenizer + CMVN  2 AED training  3 averaging + encoder export
#   4 LLM SFT 1 (adapter)  5 LLM SFT 2 (encoder + adapter + LoRA)  6 contextual SFT  7 decoding + scoring
# Stages 1-7 arrive with their issues; this recipe currently implements stage 0.
set -euo pipefail

# begin configuration
stage=0
stop_stage=0
force=false
nj=$(nproc)
num_utts=3000
seed=0
corpus_config=conf/demo_corpus.yaml
data=data
exp=exp
# end configuration

help_message="Usage: bash run.sh [--stage N] [--stop_stage N] [--force true] [--num_utts N] [--seed S] [--nj N]"

. ./path.sh
# shellcheck source=../../../tools/parse_options.sh
. "${WENET_LLM_ROOT}/tools/parse_options.sh"
# shellcheck source=../../../tools/recipe_lib.sh
. "${WENET_LLM_ROOT}/tools/recipe_lib.sh"

last_stage=0
if [ "${stop_stage}" -gt "${last_stage}" ]; then
  echo "run.sh: stages after ${last_stage} are not implemented in this recipe yet (asked for --stop_stage ${stop_stage})" >&2
  exit 1
fi

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  signature="num_utts=${num_utts} seed=${seed} config=$(sha256sum "${corpus_config}" | cut -c1-16)"
  if should_run 0 "${data}/.stage0.done" "${signature}" \
      "generate + prepare: espeak-ng demo corpus -> ${data}/{train,dev,test,test_hotword,test_noisy,noise_only}"; then
    run_logged "${exp}/data_prep/log/make_demo_corpus.log" \
      python -m wenet_llm.bin.make_demo_corpus --out "${data}" --config "${corpus_config}" \
        --num-utts "${num_utts}" --seed "${seed}" --num-jobs "${nj}"
    mark_done "${data}/.stage0.done" "${signature}"
  fi
fi

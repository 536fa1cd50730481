#!/usr/bin/env bash
# AISHELL-2 recipe (Mandarin, 1000 h). Stage numbers are shared by every recipe:
#   0 data preparation  1 tokenizer + CMVN  2 AED training  3 averaging + encoder export
#   4 LLM SFT 1 (adapter)  5 LLM SFT 2 (encoder + adapter + LoRA)  6 contextual SFT  7 decoding + scoring
set -euo pipefail

# begin configuration
stage=0           # first stage to run
stop_stage=7      # last stage to run
force=false       # true: redo finished stages (their .done markers are ignored)
nj=$(nproc)       # parallel jobs of data preparation and CMVN (default: the number of CPUs)
corpus_dir=       # holds AISHELL-2/iOS/{data,dev,test} (required by stage 0)
aishell1_dir=     # optional: holds data_aishell/ (AISHELL-1 dev/test become extra test sets)
hotword_dir=      # optional, with --aishell1_dir: SeACo-Paraformer's hotword sets ({test,dev}/{uttid,hotword.txt}) -> data/aishell1_hotword_{test,dev}
contextasr_dir=   # optional: a local ContextASR-Bench (audio extracted); its Mandarin speech set -> data/contextasr_speech_zh
validate_config=conf/validate.yaml  # stage 0 checks (ValidateConfig)
data_format=raw   # raw: training reads data/<split>/data.list; shar: also export train/dev to data/<split>/shar
data=data         # where stages 0-1 write the prepared data
aed_config=conf/aed_conformer_large.yaml  # stage 2 (AEDExperimentConfig): the large encoder of the LLM system; conf/aed_conformer.yaml is WeNet's standard AED
aed_overrides=""  # space-separated KEY=VALUE overrides of the AED config, e.g. "train.max_epoch=5"
ngpu=1            # processes (GPUs) per node of a training stage; > 1: torchrun (DDP or DeepSpeed, as the config says)
num_nodes=1       # nodes of a training stage; > 1: torchrun across nodes (see --launcher)
node_rank=0       # --launcher local across nodes: this node's rank, 0 .. num_nodes-1 (run.sh runs on every node)
master_addr=      # --launcher local across nodes: the address of node 0, where the nodes meet (rendezvous)
master_port=29500 # the rendezvous port of a run across nodes
launcher=local    # local: stages run on this machine; slurm: training stages as sbatch jobs, the others with srun (cmd.sh)
slurm_opts=""     # --launcher slurm: more sbatch/srun options for this run, e.g. "--partition=a100 --account=asr"
average_num=30    # stage 3 averages this many best checkpoints (by CV loss)
test_sets="dev test"  # sets under data/ that stage 3 decodes
decode_methods="ctc_greedy_search ctc_prefix_beam_search attention attention_rescoring"  # stage 3 search methods
llm_path=         # a local Qwen3-8B directory (config.json, weights, tokenizer); required by stages 4-7
sft1_config=conf/llm_sft1.yaml    # stage 4: SFT 1, the adapter (LLMExperimentConfig)
sft2_config=conf/llm_sft2.yaml    # stage 5: SFT 2, encoder + adapter + LoRA, from stage 4 (LLMExperimentConfig)
llm_overrides=""  # space-separated KEY=VALUE overrides of the LLM stage configs (stages 4-6), e.g. "train.max_epoch=1"
context_data_config=conf/context_data.yaml  # stage 6: hotword lists of the training data (ContextDataConfig)
ctx_config=conf/llm_ctx.yaml      # stage 6: contextual SFT from stage 5 (LLMExperimentConfig)
distractor_pool=  # optional: names for stage 6's distractors and stage 7's distractor-only lists (JSON list or one per line)
eval_sets="test aishell1_hotword_test contextasr_speech_zh test_noisy noise_only"  # stage 7: sets under data/ decoded by the LLM stages (missing ones are reported and skipped); the first is the primary one
exp=exp           # where stages 2-7 write models, logs, decodes and results
# end configuration

help_message="Usage: bash run.sh --corpus_dir DIR [options]
The AISHELL-2 recipe (Mandarin, 1000 h), stages 0-7."

. ./path.sh
# shellcheck source=../../../tools/parse_options.sh
. "${WENET_LLM_ROOT}/tools/parse_options.sh"
# shellcheck source=../../../tools/recipe_lib.sh
. "${WENET_LLM_ROOT}/tools/recipe_lib.sh"
# shellcheck source=cmd.sh
. ./cmd.sh  # this site's Slurm settings (--launcher slurm)

check_recipe_options 7
stage_times=${exp}/stage_times.tsv  # mark_done records each stage's wall time here
overrides=()  # filled per stage by override_args
# Check every required input before any work.
if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ] && [ -z "${corpus_dir}" ]; then
  echo "run.sh: stage 0 needs --corpus_dir (the folder holding AISHELL-2/)" >&2
  exit 1
fi
if [ "${stop_stage}" -ge 4 ] && [ -z "${llm_path}" ]; then
  echo "run.sh: stages 4-7 need --llm_path, a local Qwen3-8B directory (nothing is downloaded)" >&2
  exit 1
fi

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  [ -z "${hotword_dir}" ] || [ -n "${aishell1_dir}" ] || { echo "run.sh: --hotword_dir needs --aishell1_dir" >&2; exit 1; }
  if should_run 0 "${data}/.stage0.done" "format=${data_format} corpus_dir=${corpus_dir} aishell1_dir=${aishell1_dir}" \
      "prepare: ${corpus_dir} -> ${data}/{train,dev,test}"; then
    run_logged "${exp}/data_prep/log/prepare_aishell2.log" \
      python -m wenet_llm.bin.prepare_corpus --corpus aishell2 --corpus-dir "${corpus_dir}" --out "${data}" \
        --config "${validate_config}" --num-jobs "${nj}"
    [ -z "${aishell1_dir}" ] || local/aishell1_test_sets.sh "${aishell1_dir}" "${data}" "${validate_config}" "${exp}"
    [ "${data_format}" = raw ] || export_shar_splits "${data}" "${exp}" train dev
    mark_done "${data}/.stage0.done" "format=${data_format} corpus_dir=${corpus_dir} aishell1_dir=${aishell1_dir}"
  fi
  # Contextual test sets (docs/context.md), with their own marker: adding them later redoes only this part.
  if [ -n "${hotword_dir}${contextasr_dir}" ]; then
    ctx_args=()
    [ -z "${hotword_dir}" ] || ctx_args+=(--aishell1-dir "${aishell1_dir}" --hotword-dir "${hotword_dir}")
    [ -z "${contextasr_dir}" ] || ctx_args+=(--contextasr-dir "${contextasr_dir}" --contextasr-langs Mandarin)
    if should_run 0 "${data}/.stage0_context.done" "${ctx_args[*]}" "contextual test sets -> ${data}/{aishell1_hotword_*,contextasr_speech_zh}"; then
      run_logged "${exp}/data_prep/log/prepare_context_testsets.log" \
        python -m wenet_llm.bin.prepare_context_testsets "${ctx_args[@]}" --out "${data}"
      mark_done "${data}/.stage0_context.done" "${ctx_args[*]}"
    fi
  fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  # The train list is part of the signature: redoing stage 0 makes stage 1 stale.
  signature="char train=$(file_digest "${data}/train/data.list")"
  if should_run 1 "${data}/.stage1.done" "${signature}" "tokenizer + CMVN: ${data}/train -> ${data}/lang/units.txt, ${data}/train/global_cmvn"; then
    run_logged "${exp}/tokenizer/log/make_tokenizer.log" \
      python -m wenet_llm.bin.make_tokenizer --data "${data}/train/data.list" --mode char --out-dir "${data}/lang"
    run_logged "${exp}/cmvn/log/compute_cmvn.log" \
      python -m wenet_llm.bin.compute_cmvn --data "${data}/train/data.list" --out "${data}/train/global_cmvn" --num-workers "${nj}"
    mark_done "${data}/.stage1.done" "${signature}"
  fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  # Resumable: an interrupted run continues from its latest checkpoint when the stage is rerun
  # with the same options (--force true starts afresh, moving the old run aside).
  signature="config=$(file_digest "${aed_config}") overrides=${aed_overrides} train=$(file_digest "${data}/train/data.list") units=$(file_digest "${data}/lang/units.txt")"
  if should_run 2 "${exp}/aed/.stage2.done" "${signature}" "train the AED: ${data}/train -> ${exp}/aed/*.pt"; then
    claim_stage_dir "${exp}/aed" "${signature}"
    override_args "${aed_overrides}" overrides
    run_training "${exp}/aed/log/train.log" python -m wenet_llm.bin.train_aed --config "${aed_config}" \
      --exp-dir "${exp}/aed" --data-dir "${data}" --data-format "${data_format}" "${overrides[@]}"
    mark_done "${exp}/aed/.stage2.done" "${signature}"
  fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  signature="average_num=${average_num} tests=${test_sets} methods=${decode_methods} final=$(file_digest "${exp}/aed/final.pt")"
  if should_run 3 "${exp}/aed/.stage3.done" "${signature}" \
      "average + decode + export: ${exp}/aed -> avg_${average_num}.pt, decode_{${test_sets// /,}}/, encoder/"; then
    # shellcheck disable=SC2086 # the set and method lists are meant to split into words
    run_logged "${exp}/aed/log/finish_aed.log" python -m wenet_llm.bin.finish_aed --exp-dir "${exp}/aed" \
      --num "${average_num}" --data-dir "${data}" --test-sets ${test_sets} --methods ${decode_methods}
    mark_done "${exp}/aed/.stage3.done" "${signature}"
  fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  signature="config=$(file_digest "${sft1_config}") overrides=${llm_overrides} encoder=$(dir_digest "${exp}/aed/encoder") llm=${llm_path}"
  if should_run 4 "${exp}/llm_sft1/.stage4.done" "${signature}" \
      "SFT 1 (adapter): ${exp}/aed/encoder + ${llm_path} -> ${exp}/llm_sft1"; then
    claim_stage_dir "${exp}/llm_sft1" "${signature}"
    override_args "${llm_overrides}" overrides
    run_training "${exp}/llm_sft1/log/train.log" python -m wenet_llm.bin.train_llm --config "${sft1_config}" \
      --exp-dir "${exp}/llm_sft1" --data-dir "${data}" --data-format "${data_format}" \
      --encoder-dir "${exp}/aed/encoder" --llm-path "${llm_path}" "${overrides[@]}"
    mark_done "${exp}/llm_sft1/.stage4.done" "${signature}"
  fi
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  signature="config=$(file_digest "${sft2_config}") overrides=${llm_overrides} sft1=$(dir_digest "${exp}/llm_sft1/final")"
  if should_run 5 "${exp}/llm_sft2/.stage5.done" "${signature}" \
      "SFT 2 (encoder + adapter + LoRA): ${exp}/llm_sft1 -> ${exp}/llm_sft2"; then
    claim_stage_dir "${exp}/llm_sft2" "${signature}"
    override_args "${llm_overrides}" overrides
    run_training "${exp}/llm_sft2/log/train.log" python -m wenet_llm.bin.train_llm --config "${sft2_config}" \
      --exp-dir "${exp}/llm_sft2" --data-dir "${data}" --data-format "${data_format}" \
      --encoder-dir "${exp}/aed/encoder" --llm-path "${llm_path}" --init-from "${exp}/llm_sft1" "${overrides[@]}"
    mark_done "${exp}/llm_sft2/.stage5.done" "${signature}"
  fi
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  signature="config=$(file_digest "${ctx_config}") context=$(file_digest "${context_data_config}") pool=${distractor_pool} overrides=${llm_overrides} sft2=$(dir_digest "${exp}/llm_sft2/final")"
  if should_run 6 "${exp}/llm_ctx/.stage6.done" "${signature}" \
      "contextual SFT: hotword lists -> ${data}/{train,dev}_ctx; ${exp}/llm_sft2 -> ${exp}/llm_ctx"; then
    claim_stage_dir "${exp}/llm_ctx" "${signature}"
    pool_args=()
    [ -z "${distractor_pool}" ] || pool_args=(--extra-pool "${distractor_pool}")
    for split in train dev; do
      run_logged "${exp}/llm_ctx/log/make_context_data_${split}.log" python -m wenet_llm.bin.make_context_data \
        --in "${data}/${split}/data.list" --out "${data}/${split}_ctx" --config "${context_data_config}" "${pool_args[@]}"
    done
    override_args "${llm_overrides}" overrides
    # The contextual lists are data.list files (raw), whatever --data_format stage 0 exported.
    run_training "${exp}/llm_ctx/log/train.log" python -m wenet_llm.bin.train_llm --config "${ctx_config}" \
      --exp-dir "${exp}/llm_ctx" --data-dir "${data}" --data-format raw --train-split train_ctx --dev-split dev_ctx \
      --encoder-dir "${exp}/aed/encoder" --llm-path "${llm_path}" --init-from "${exp}/llm_sft2" "${overrides[@]}"
    mark_done "${exp}/llm_ctx/.stage6.done" "${signature}"
  fi
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
  finals=$(trained_digests "${exp}")
  signature="sets=${eval_sets} pool=${distractor_pool}${finals}"
  if should_run 7 "${exp}/results/.stage7.done" "${signature}" \
      "decode + score ${eval_sets// /, } with the AED and each LLM stage -> ${exp}/results/{results.json,results.md}, ${exp}/plots"; then
    pool_args=()
    [ -z "${distractor_pool}" ] || pool_args=(--distractor-pool "${distractor_pool}")
    # shellcheck disable=SC2086 # the set list is meant to split into words
    run_logged "${exp}/results/log/evaluate.log" python -m wenet_llm.bin.evaluate --data-dir "${data}" \
      --exp-dir "${exp}" --out "${exp}/results" --test-sets ${eval_sets} "${pool_args[@]}" \
      --stage-times "${stage_times}" --stage 7 --configs conf/*.yaml
    plot_results "${exp}"
    mark_done "${exp}/results/.stage7.done" "${signature}"
  fi
fi

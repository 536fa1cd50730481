#!/usr/bin/env bash
# Demo recipe: the whole wenet_llm pipeline on a bilingual corpus generated with espeak-ng, on CPU.
# Stage numbers are shared by every recipe:
#   0 data preparation  1 tokenizer + CMVN  2 AED training  3 averaging + encoder export
#   4 LLM SFT 1 (adapter)  5 LLM SFT 2 (encoder + adapter + LoRA)  6 contextual SFT  7 decoding + scoring
set -euo pipefail

# begin configuration
stage=0           # first stage to run
smoke=false       # true: every stage on a 200-utterance corpus, a few training steps each (CI runs it); data and exp default to smoke/data, smoke/exp
stop_stage=7      # last stage to run
force=false       # true: redo finished stages (their .done markers are ignored)
nj=$(nproc)       # parallel jobs of data preparation and CMVN (default: the number of CPUs)
num_utts=3000     # speech utterances of the generated corpus
seed=0            # seed of the generated corpus
corpus_config=conf/demo_corpus.yaml    # the corpus generator's config (DemoCorpusConfig)
validate_config=conf/validate.yaml     # stage 0 checks (ValidateConfig)
unit_type=char    # char: Hanzi + English letters (what a few CPU epochs can learn); mixed: Hanzi + English BPE
bpe_vocab_size=300  # English BPE pieces with unit_type=mixed
demo_llm_config=conf/demo_llm.yaml     # stage 1: the demo's base LLM, a small Qwen3 pre-trained on grammar text (DemoLLMConfig)
demo_llm_overrides=""  # space-separated KEY=VALUE overrides of the demo LLM config, e.g. "train.max_steps=100"
llm_path=         # the base LLM of stages 4-6, a local Hugging Face directory (default: the one stage 1 builds, exp/demo_llm/model)
data_format=raw   # raw: training reads data/<split>/data.list; shar: also export train/dev to data/<split>/shar
data=data         # where stages 0-1 write the prepared data
aed_config=conf/aed_conformer.yaml     # the AED experiment config of stage 2 (AEDExperimentConfig)
aed_overrides=""  # space-separated KEY=VALUE overrides of the AED config, e.g. "train.max_epoch=5"
ngpu=1            # processes (GPUs) per node of a training stage; > 1: torchrun (DDP or DeepSpeed, as the config says)
num_nodes=1       # nodes of a training stage; > 1: torchrun across nodes (see --launcher)
node_rank=0       # --launcher local across nodes: this node's rank, 0 .. num_nodes-1 (run.sh runs on every node)
master_addr=      # --launcher local across nodes: the address of node 0, where the nodes meet (rendezvous)
master_port=29500 # the rendezvous port of a run across nodes
launcher=local    # local: stages run on this machine; slurm: training stages as sbatch jobs, the others with srun (cmd.sh)
slurm_opts=""     # --launcher slurm: more sbatch/srun options for this run, e.g. "--partition=a100 --account=asr"
average_num=3     # stage 3 averages this many best checkpoints (by CV loss)
test_sets="test test_noisy test_hotword"  # sets under data/ that stage 3 decodes
decode_methods="ctc_greedy_search attention_rescoring"  # stage 3 search methods (attention beam search is slow on CPU)
sft1_config=conf/llm_sft1.yaml    # stage 4: SFT 1, the adapter (LLMExperimentConfig)
sft2_config=conf/llm_sft2.yaml    # stage 5: SFT 2, encoder + adapter + LoRA, from stage 4 (LLMExperimentConfig)
llm_overrides=""  # space-separated KEY=VALUE overrides of the LLM stage configs (stages 4-6), e.g. "train.max_epoch=1"
context_data_config=conf/context_data.yaml  # stage 6: hotword lists and summaries of the training data (ContextDataConfig)
ctx_config=conf/llm_ctx.yaml      # stage 6: contextual SFT from stage 5 (LLMExperimentConfig)
results_json=     # stage 7 also copies exp/results/results.json here (the top-level run.sh: the repository root)
exp=exp           # where stages 1-7 write models, logs, decodes and results
# end configuration

help_message="Usage: bash run.sh [options]
The demo recipe: the pipeline on a generated bilingual corpus, on CPU (stages 0-7)."

. ./path.sh
# shellcheck source=../../../tools/parse_options.sh
. "${WENET_LLM_ROOT}/tools/parse_options.sh"
# shellcheck source=../../../tools/recipe_lib.sh
. "${WENET_LLM_ROOT}/tools/recipe_lib.sh"
# shellcheck source=cmd.sh
. ./cmd.sh  # this site's Slurm settings (--launcher slurm)

check_recipe_options 7
if [ "${smoke}" = true ]; then
  # The same stages and configs, shrunk: a small corpus, tiny models, a few steps per training stage.
  [ "${data}" = data ] && data=smoke/data
  [ "${exp}" = exp ] && exp=smoke/exp
  num_utts=200
  demo_llm_overrides="num_sentences=300 max_tokens=512 pack_tokens=64 size.hidden_size=32 size.num_hidden_layers=1 size.num_attention_heads=2 size.num_key_value_heads=1 size.head_dim=16 size.intermediate_size=64 train.max_steps=3 hypothesis.warmup_steps=2 hypothesis.warmup_samples=100 train.log_interval=1 ${demo_llm_overrides}"
  aed_overrides="model.encoder_conf.output_size=32 model.encoder_conf.attention_heads=2 model.encoder_conf.linear_units=64 model.encoder_conf.num_blocks=1 model.decoder_conf.attention_heads=2 model.decoder_conf.linear_units=64 model.decoder_conf.num_blocks=1 train.max_epoch=2 train.log_interval=1 data.num_workers=0 data.noise.start_epoch=1 data.non_speech.start_epoch=1 ${aed_overrides}"
  average_num=2
  llm_overrides="model.adapter.hidden_size=32 train.max_steps=3 train.max_epoch=1 train.log_interval=1 data.num_workers=0 decode.max_new_tokens=20 ${llm_overrides}"
elif [ "${smoke}" != false ]; then
  echo "run.sh: --smoke must be true or false, got '${smoke}'" >&2
  exit 1
fi
stage_times=${exp}/stage_times.tsv  # mark_done records each stage's wall time here
llm_path=${llm_path:-${exp}/demo_llm/model}
overrides=()  # filled per stage by override_args

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  signature="num_utts=${num_utts} seed=${seed} format=${data_format} config=$(sha256sum "${corpus_config}" | cut -c1-16)"
  if should_run 0 "${data}/.stage0.done" "${signature}" \
      "generate + prepare: espeak-ng demo corpus -> ${data}/corpus -> ${data}/{train,dev,test,test_hotword,test_noisy,noise_only,train_non_speech}, ${data}/noise_train"; then
    run_logged "${exp}/data_prep/log/make_demo_corpus.log" \
      python -m wenet_llm.bin.make_demo_corpus --out "${data}/corpus" --config "${corpus_config}" \
        --num-utts "${num_utts}" --seed "${seed}" --num-jobs "${nj}"
    run_logged "${exp}/data_prep/log/prepare_corpus.log" \
      python -m wenet_llm.bin.prepare_corpus --corpus demo --corpus-dir "${data}/corpus" --out "${data}" \
        --config "${validate_config}"
    [ "${data_format}" = raw ] || export_shar_splits "${data}" "${exp}" train dev
    mark_done "${data}/.stage0.done" "${signature}"
  fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  # The train list is part of the signature: redoing stage 0 makes stage 1 stale.
  case "${unit_type}" in
    char) tokenizer_args=(--mode char) ;;
    mixed) tokenizer_args=(--mode mixed --vocab-size "${bpe_vocab_size}") ;;
    *) echo "$0: --unit_type must be char or mixed, got '${unit_type}'" >&2; exit 1 ;;
  esac
  # The train list is part of the signature: redoing stage 0 makes stage 1 stale.
  signature="${tokenizer_args[*]} train=$(file_digest "${data}/train/data.list")"
  if should_run 1 "${data}/.stage1.done" "${signature}" \
      "tokenizer + CMVN: ${data}/train -> ${data}/lang/units.txt (+ bpe.model for mixed), ${data}/train/global_cmvn"; then
    # char: every Hanzi and English letter is a unit, a space is "▁" (WeNet's char units);
    # mixed: Hanzi characters plus English BPE pieces (WeNet's bpe tokenizer semantics).
    run_logged "${exp}/tokenizer/log/make_tokenizer.log" \
      python -m wenet_llm.bin.make_tokenizer --data "${data}/train/data.list" "${tokenizer_args[@]}" \
        --out-dir "${data}/lang"
    run_logged "${exp}/cmvn/log/compute_cmvn.log" \
      python -m wenet_llm.bin.compute_cmvn --data "${data}/train/data.list" --out "${data}/train/global_cmvn" \
        --num-workers "${nj}"
    mark_done "${data}/.stage1.done" "${signature}"
  fi
  # The demo's base LLM (a corpus recipe brings Qwen3-8B as --llm_path instead).
  signature="config=$(file_digest "${demo_llm_config}") overrides=${demo_llm_overrides} train=$(file_digest "${data}/train/data.list")"
  if should_run 1 "${exp}/demo_llm/.done" "${signature}" \
      "base LLM: Qwen tokenizer trimmed to ${data}, small Qwen3 pre-trained on grammar text -> ${exp}/demo_llm/model"; then
    claim_stage_dir "${exp}/demo_llm" "${signature}"
    override_args "${demo_llm_overrides}" overrides
    run_logged "${exp}/demo_llm/log/make_demo_llm.log" python -m wenet_llm.bin.make_demo_llm \
      --config "${demo_llm_config}" --data-dir "${data}" --exp-dir "${exp}/demo_llm" --num-jobs "${nj}" "${overrides[@]}"
    mark_done "${exp}/demo_llm/.done" "${signature}"
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
  signature="config=$(file_digest "${sft1_config}") overrides=${llm_overrides} encoder=$(dir_digest "${exp}/aed/encoder") llm=$(dir_digest "${llm_path}")"
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
  signature="config=$(file_digest "${ctx_config}") context=$(file_digest "${context_data_config}") overrides=${llm_overrides} sft2=$(dir_digest "${exp}/llm_sft2/final")"
  if should_run 6 "${exp}/llm_ctx/.stage6.done" "${signature}" \
      "contextual SFT: hotword lists + summaries -> ${data}/{train,dev}_ctx; ${exp}/llm_sft2 -> ${exp}/llm_ctx"; then
    claim_stage_dir "${exp}/llm_ctx" "${signature}"
    # Targets are the names each utterance speaks; distractors come from the other utterances and from a
    # pool of names no utterance speaks, so the model learns to copy a listed name, not to know it.
    for split in train dev; do
      run_logged "${exp}/llm_ctx/log/make_context_data_${split}.log" python -m wenet_llm.bin.make_context_data \
        --in "${data}/${split}/data.list" --out "${data}/${split}_ctx" --config "${context_data_config}" \
        --extra-pool "${data}/corpus/distractor_names.json"
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
  signature="tests=$(cat "${data}"/{test,test_noisy,test_hotword,noise_only}/data.list 2> /dev/null | sha256sum | cut -c1-16)${finals}"
  if should_run 7 "${exp}/results/.stage7.done" "${signature}" \
      "decode + score every test set with the AED and each LLM stage -> ${exp}/results/{results.json,results.md}, ${exp}/plots"; then
    run_logged "${exp}/results/log/evaluate.log" python -m wenet_llm.bin.evaluate --data-dir "${data}" \
      --exp-dir "${exp}" --out "${exp}/results" --distractor-pool "${data}/corpus/distractor_names.json" \
      --stage-times "${stage_times}" --stage 7 --configs conf/*.yaml
    plot_results "${exp}"
    if [ -n "${results_json}" ]; then cp "${exp}/results/results.json" "${results_json}"; fi
    mark_done "${exp}/results/.stage7.done" "${signature}"
  fi
fi

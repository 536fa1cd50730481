# shellcheck shell=bash
# Stage helpers sourced by every recipe's run.sh, so stage bookkeeping is written once.
# How commands run (run_logged, run_training: here, under torchrun, on Slurm) is the last section.

log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') $*"
}

# should_run N DONE_FILE SIGNATURE MESSAGE: log "Stage N: MESSAGE" and return 0 if the stage must run.
# A stage that finished leaves DONE_FILE holding SIGNATURE (its options); it is skipped next time
# unless force=true. A marker with another signature means the outputs were made with other
# options: that is an error rather than a silent reuse.
should_run() {
  local n=$1 done_file=$2 signature=$3 message=$4
  log "Stage ${n}: ${message}"
  _stage_number=${n}
  _stage_started=${SECONDS}
  if [ -f "${done_file}" ] && [ "${force:-false}" != true ]; then
    if [ "$(cat "${done_file}")" = "${signature}" ]; then
      log "Stage ${n}: already done (${done_file}); skipping. Use --force true to redo it."
      return 1
    fi
    echo "Stage ${n}: ${done_file} was made with other options:" >&2
    echo "  before: $(cat "${done_file}")" >&2
    echo "  now:    ${signature}" >&2
    echo "Rerun with --force true to redo stage ${n}." >&2
    exit 1
  fi
  return 0
}

# mark_done DONE_FILE SIGNATURE: the stage part that should_run started is done. Its wall time is
# logged and, when the recipe sets stage_times (a file), recorded there as "STAGE<TAB>DONE_FILE<TAB>SECONDS"
# (the last line of a DONE_FILE counts: a redone part replaces its earlier time).
mark_done() {
  local seconds=$((SECONDS - ${_stage_started:-${SECONDS}}))
  echo "$2" > "$1"
  log "Stage ${_stage_number:-?}: done in ${seconds} s"
  if [ -n "${stage_times:-}" ]; then
    mkdir -p "$(dirname "${stage_times}")"
    printf '%s\t%s\t%s\n' "${_stage_number:-?}" "$1" "${seconds}" >> "${stage_times}"
  fi
}

# claim_stage_dir DIR SIGNATURE: make DIR the working dir of a resumable stage run with SIGNATURE.
# Rerunning a stage resumes what DIR holds, which is right only for a run started with the same
# options: a DIR started with other options is an error, and under --force true the old contents are
# moved aside to DIR.replaced-<time> so that a forced redo starts fresh instead of resuming another
# configuration's checkpoints.
claim_stage_dir() {
  local dir=$1 signature=$2 stamp="$1/.started" aside
  if [ -d "${dir}" ] && [ -n "$(ls -A "${dir}")" ]; then
    if [ "${force:-false}" = true ]; then
      aside="${dir}.replaced-$(date +%Y%m%d-%H%M%S)"
      log "--force true: moving the earlier ${dir} to ${aside}"
      mv "${dir}" "${aside}"
    elif [ -f "${stamp}" ] && [ "$(cat "${stamp}")" != "${signature}" ]; then
      echo "${dir} holds a run started with other options:" >&2
      echo "  before: $(cat "${stamp}")" >&2
      echo "  now:    ${signature}" >&2
      echo "Rerun with --force true (the old run is moved aside) or choose another --exp." >&2
      exit 1
    fi
  fi
  mkdir -p "${dir}"
  echo "${signature}" > "${stamp}"
}

# file_digest FILE: a short content hash, so a stage's signature changes when its input does.
file_digest() {
  if [ ! -f "$1" ]; then
    echo "missing $1; run the stage that makes it first (see --stage)" >&2
    exit 1
  fi
  sha256sum "$1" | cut -c1-16
}

# dir_digest DIR: a short hash of every file under DIR (e.g. a checkpoint directory, followed through
# the final -> epoch_N link), so a stage that starts from another stage's result notices when it changes.
dir_digest() {
  if [ ! -d "$1" ]; then
    echo "missing $1; run the stage that makes it first (see --stage)" >&2
    exit 1
  fi
  (cd "$1/" && find -L . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# override_args "K=V K2=V2": the --override arguments of an entry point, one per word, into the array
# named by $2 (empty when there is none).
override_args() {
  local -n into=$2
  local o
  into=()
  for o in $1; do into+=(--override "${o}"); done
}

# export_shar_splits DATA EXP SPLIT...: also write each prepared split as lhotse Shar
# (DATA/SPLIT/shar), what cluster-scale training reads with `format: shar`.
export_shar_splits() {
  local data=$1 exp=$2 split
  shift 2
  for split in "$@"; do
    run_logged "${exp}/data_prep/log/export_shar_${split}.log" \
      python -m wenet_llm.bin.export_shar --in "${data}/${split}/data.list" --out "${data}/${split}/shar"
  done
}

# check_stages LAST_STAGE: refuse a --stage/--stop_stage that is not a number, an inverted range and
# a stage after LAST_STAGE (the last one this recipe implements), before any stage runs. Without it
# `--stage abc` or `--stage 7` would run nothing and exit 0.
check_stages() {
  local last_stage=$1 name value
  for name in stage stop_stage; do
    value=${!name}
    if ! [[ "${value}" =~ ^[0-9]+$ ]]; then
      echo "run.sh: --${name} must be a stage number (0-${last_stage}), got '${value}'" >&2
      exit 1
    fi
    if [ "${value}" -gt "${last_stage}" ]; then
      echo "run.sh: stages after ${last_stage} are not implemented in this recipe yet (asked for --${name} ${value}); stages 0-${last_stage} are" >&2
      exit 1
    fi
  done
  # shellcheck disable=SC2154 # stage and stop_stage are the recipe's options, set before this is called
  if [ "${stage}" -gt "${stop_stage}" ]; then
    echo "run.sh: --stage ${stage} is after --stop_stage ${stop_stage}, so no stage would run; use --stage N --stop_stage M with N <= M" >&2
    exit 1
  fi
}

# check_recipe_options LAST_STAGE: check_stages and check_launch_options, and refuse a bad --data_format,
# before any stage runs.
check_recipe_options() {
  check_stages "$1"
  check_launch_options
  case "${data_format:-raw}" in
    raw|shar) ;;
    *) echo "run.sh: --data_format must be raw or shar, got ${data_format}" >&2; exit 1 ;;
  esac
}

# ---- Launching: how a recipe's commands run, on this machine, under torchrun or on Slurm (docs/clusters.md).
# These functions read the recipe's options, set before they are called:
#   ngpu num_nodes node_rank master_addr master_port launcher slurm_opts          (run.sh's configuration)
#   slurm_train_opts slurm_gres slurm_short slurm_short_opts                       (the recipe's cmd.sh)
# A variable that is not set takes the default of a one-process local run, so scripts that only source
# recipe_lib.sh keep working.

# run_here LOG_FILE CMD...: run CMD on this machine, teeing its output to LOG_FILE (pipefail keeps CMD's status).
run_here() {
  local log_file=$1
  shift
  mkdir -p "$(dirname "${log_file}")"
  log "running: $* (log: ${log_file})"
  "$@" 2>&1 | tee "${log_file}"
}

# run_logged LOG_FILE CMD...: run a short stage's command (data preparation, decoding, scoring), its output
# in LOG_FILE. With launcher=slurm and slurm_short=srun (cmd.sh), CMD runs as a one-node srun job.
run_logged() {
  local log_file=$1 opts=()
  shift
  if [ "${launcher:-local}" = slurm ] && [ "${slurm_short:-srun}" = srun ]; then
    read -ra opts <<< "${slurm_short_opts:-} ${slurm_opts:-}"
    set -- srun --nodes=1 --ntasks=1 "${opts[@]}" "$@"
  fi
  run_here "${log_file}" "$@"
}

# torchrun_command ARRAY MODULE ARG...: how this machine runs `python -m MODULE ARG...` as one process of
# the training run's layout, ${num_nodes} node(s) x ${ngpu} processes, into the array named ARRAY:
#   1 node, 1 process      python -m MODULE ...
#   1 node, N processes    torchrun --standalone --nnodes=1 --nproc_per_node=N -m MODULE ...
#   M nodes                torchrun --nnodes=M --node_rank=R --nproc_per_node=N --master_addr=A --master_port=P -m ...
# Several nodes use torchrun's static rendezvous: the same run.sh starts on every node, each with its
# --node_rank, all with node 0's address as --master_addr.
torchrun_command() {
  local -n _tc_into=$1
  local module=$2 nodes=${num_nodes:-1} nproc=${ngpu:-1}
  shift 2
  if [ "${nodes}" -gt 1 ]; then
    _tc_into=(torchrun --nnodes="${nodes}" --node_rank="${node_rank:-0}" --nproc_per_node="${nproc}"
      --master_addr="${master_addr:-}" --master_port="${master_port:-29500}" -m "${module}" "$@")
  elif [ "${nproc}" -gt 1 ]; then
    _tc_into=(torchrun --standalone --nnodes=1 --nproc_per_node="${nproc}" -m "${module}" "$@")
  else
    _tc_into=(python -m "${module}" "$@")
  fi
}

# run_training LOG_FILE python -m MODULE ARG...: run a training stage's entry point on ${num_nodes} node(s)
# x ${ngpu} processes (DDP or DeepSpeed, as its config says), its output in LOG_FILE.
# launcher=local: here (torchrun_command); launcher=slurm: as a batch job (submit_training), waited for.
run_training() {
  local log_file=$1 cmd=()
  shift
  if [ $# -lt 3 ] || [ "$1" != python ] || [ "$2" != -m ]; then
    echo "run_training: expected LOG_FILE python -m MODULE ARG..., got: $*" >&2
    return 1
  fi
  shift 2
  if [ "${launcher:-local}" = slurm ]; then
    submit_training "${log_file}" "$@"
  else
    torchrun_command cmd "$@"
    # Across nodes every node runs this, often on one shared file system: node 0 keeps the stage's log name.
    if [ "${node_rank:-0}" -gt 0 ]; then log_file="${log_file%.log}.node${node_rank}.log"; fi
    run_here "${log_file}" "${cmd[@]}"
  fi
}

# submit_training LOG_FILE MODULE ARG...: write a batch script beside LOG_FILE (train.log -> train.sbatch)
# and submit it with `sbatch --wait`: ${num_nodes} nodes, one task per node with ${ngpu} GPUs, the job's
# output in LOG_FILE. The script starts one torchrun per node with srun; they meet at the allocation's
# first node (torchrun's c10d rendezvous, so no node needs its rank). Returns the job's exit status.
submit_training() {
  local log_file=$1 module=$2
  shift 2
  local nodes=${num_nodes:-1} nproc=${ngpu:-1} port=${master_port:-29500}
  local script=${log_file%.log}.sbatch job_name gpus site_opts=() run_opts=() sbatch_args=() launch
  job_name="wenet_llm_$(basename "$(dirname "$(dirname "${log_file}")")")"  # exp/aed/log/train.log -> wenet_llm_aed
  if [ "${slurm_gres:-false}" = true ]; then gpus="--gres=gpu:${nproc}"; else gpus="--gpus-per-node=${nproc}"; fi
  read -ra site_opts <<< "${slurm_train_opts:-}"
  read -ra run_opts <<< "${slurm_opts:-}"
  sbatch_args=(--wait --job-name="${job_name}" --nodes="${nodes}" --ntasks-per-node=1 "${gpus}"
    --output="${log_file}" --chdir="${PWD}" "${site_opts[@]}" "${run_opts[@]}")
  if [ "${nodes}" -gt 1 ]; then
    # Written into the script unquoted: ${rdzv_host} and ${SLURM_JOB_ID} are the job's, expanded when it runs.
    # shellcheck disable=SC2016
    launch='torchrun --nnodes='"${nodes}"' --nproc_per_node='"${nproc}"' --rdzv_backend=c10d'
    # shellcheck disable=SC2016
    launch+=' --rdzv_endpoint="${rdzv_host}:'"${port}"'" --rdzv_id="${SLURM_JOB_ID}" -m'
  else
    local one=()
    torchrun_command one "${module}"
    unset 'one[-1]'  # the module, quoted below with the arguments; the rest are plain words
    launch="${one[*]}"
  fi
  mkdir -p "$(dirname "${log_file}")"
  {
    echo '#!/usr/bin/env bash'
    echo "# A training job of run.sh (${module}), submitted from ${PWD} with:"
    echo "#   sbatch $(printf '%q ' "${sbatch_args[@]}")${script}"
    echo "# The same command resubmits it; a rerun of the stage resumes from the latest checkpoint."
    cat << 'EOF'
set -euo pipefail
. ./path.sh
# The rendezvous host: the first node of the allocation.
mapfile -t nodes < <(scontrol show hostnames "${SLURM_JOB_NODELIST}")
rdzv_host=${nodes[0]:?scontrol show hostnames ${SLURM_JOB_NODELIST} gave no node}
# srun does not inherit sbatch's --cpus-per-task (Slurm >= 22.05).
[ -z "${SLURM_CPUS_PER_TASK:-}" ] || export SRUN_CPUS_PER_TASK="${SLURM_CPUS_PER_TASK}"
echo "$(date '+%Y-%m-%d %H:%M:%S') Slurm job ${SLURM_JOB_ID} on ${SLURM_JOB_NODELIST}; rendezvous host ${rdzv_host}"
EOF
    printf 'srun --nodes=%s --ntasks-per-node=1 %s' "${nodes}" "${launch}"
    printf ' %q' "${module}" "$@"
    echo
  } > "${script}"
  log "submitting ${script} to Slurm: ${nodes} node(s) x ${nproc} GPU(s); waiting for the job (log: ${log_file})"
  if ! sbatch "${sbatch_args[@]}" "${script}"; then
    {
      echo "run.sh: the Slurm job of ${script} failed; its log, ${log_file}, ends with:"
      tail -n 20 "${log_file}" 2> /dev/null || echo "(no log: the job may not have started; see sbatch's message above)"
    } >&2
    return 1
  fi
  log "Slurm job ${job_name} finished (log: ${log_file})"
}

# check_launch_options: refuse a bad process layout or launcher before any stage runs.
check_launch_options() {
  local name value
  for name in ngpu num_nodes master_port; do
    value=${!name:-1}
    if ! [[ "${value}" =~ ^[1-9][0-9]*$ ]]; then
      echo "run.sh: --${name} must be a whole number >= 1, got '${value}'" >&2
      exit 1
    fi
  done
  if [ "${master_port:-29500}" -gt 65535 ]; then
    echo "run.sh: --master_port must be a TCP port, 1 .. 65535, got '${master_port}'" >&2
    exit 1
  fi
  if ! [[ "${node_rank:-0}" =~ ^[0-9]+$ ]] || [ "${node_rank:-0}" -ge "${num_nodes:-1}" ]; then
    echo "run.sh: --node_rank must be 0 .. $((${num_nodes:-1} - 1)) (--num_nodes ${num_nodes:-1}), got '${node_rank:-0}'" >&2
    exit 1
  fi
  case "${launcher:-local}" in
    local)
      if [ "${num_nodes:-1}" -gt 1 ] && [ -z "${master_addr:-}" ]; then
        echo "run.sh: --num_nodes ${num_nodes} with --launcher local needs --master_addr, the address of the node" \
          "started with --node_rank 0 (run.sh runs on every node); or use --launcher slurm" >&2
        exit 1
      fi
      ;;
    slurm)
      if [ "${node_rank:-0}" != 0 ] || [ -n "${master_addr:-}" ]; then
        echo "run.sh: --node_rank and --master_addr are for --launcher local; with Slurm, one run.sh submits" \
          "the job, which starts a torchrun on every node and meets at the first node" >&2
        exit 1
      fi
      case "${slurm_short:-srun}" in
        srun|local) ;;
        *) echo "run.sh: slurm_short in cmd.sh must be srun or local, got '${slurm_short}'" >&2; exit 1 ;;
      esac
      for name in sbatch srun; do
        if ! command -v "${name}" > /dev/null; then
          echo "run.sh: --launcher slurm needs ${name}, which is not on PATH; run on a Slurm login node or" \
            "use --launcher local" >&2
          exit 1
        fi
      done
      ;;
    *)
      echo "run.sh: --launcher must be local or slurm, got '${launcher}'" >&2
      exit 1
      ;;
  esac
}

# trained_digests EXP: " aed/final.pt=D llm_sft1/final=D ..." for the trained models stage 7 evaluates
# (those that exist), the part of stage 7's signature that makes it stale when a model is retrained.
trained_digests() {
  local exp=$1 d out=""
  for d in aed/final.pt llm_sft1/final llm_sft2/final llm_ctx/final; do
    if [ -d "${exp}/${d}" ]; then out+=" ${d}=$(dir_digest "${exp}/${d}")"; fi
    if [ -f "${exp}/${d}" ]; then out+=" ${d}=$(file_digest "${exp}/${d}")"; fi
  done
  echo "${out}"
}

# plot_results EXP: stage 7's pictures, the training curves of every stage dir with TensorBoard logs and
# the error rates of EXP/results/results.json, into EXP/plots.
plot_results() {
  local exp=$1 d curves=()
  for d in aed llm_sft1 llm_sft2 llm_ctx; do [ -d "${exp}/${d}/tensorboard" ] && curves+=("${exp}/${d}"); done
  run_logged "${exp}/results/log/plot_results.log" python -m wenet_llm.bin.plot_results \
    --exp-dirs "${curves[@]}" --results "${exp}/results/results.json" --out-dir "${exp}/plots" --allow-missing
}

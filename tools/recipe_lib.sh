# shellcheck shell=bash
# Stage helpers sourced by every recipe's run.sh, so stage bookkeeping is written once.

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

# mark_done DONE_FILE SIGNATURE
mark_done() {
  echo "$2" > "$1"
}

# run_logged LOG_FILE CMD...: run CMD, teeing its output to LOG_FILE (pipefail keeps CMD's status).
run_logged() {
  local log_file=$1
  shift
  mkdir -p "$(dirname "${log_file}")"
  log "running: $* (log: ${log_file})"
  "$@" 2>&1 | tee "${log_file}"
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

# python_launch NPROC MODULE ARG...: run a wenet_llm entry point in one process, or with torchrun
# on NPROC local processes (DDP or DeepSpeed, as the training config says).
python_launch() {
  local nproc=$1
  shift
  if [ "${nproc}" -gt 1 ]; then
    torchrun --standalone --nproc_per_node "${nproc}" -m "$@"
  else
    python -m "$@"
  fi
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

# check_recipe_options LAST_STAGE: check_stages, and refuse a bad --data_format, before any stage runs.
check_recipe_options() {
  check_stages "$1"
  case "${data_format:-raw}" in
    raw|shar) ;;
    *) echo "run.sh: --data_format must be raw or shar, got ${data_format}" >&2; exit 1 ;;
  esac
}

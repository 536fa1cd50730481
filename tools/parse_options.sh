# shellcheck shell=bash
# Kaldi-style option parsing for recipe scripts.
#
# Usage (after the script has set its default variables):
#   . "$WENET_LLM_ROOT/tools/parse_options.sh"
#
# "--foo-bar v" or "--foo-bar=v" sets the existing variable foo_bar. Unknown
# options, bad booleans and missing values are fatal; "--config FILE" sources
# FILE; "--help"/"-h" prints $help_message, then every option of the script's
# "# begin configuration" ... "# end configuration" block with its default and
# the comment on its line, so the help cannot fall behind the options. Parsing
# stops at the first argument not starting with "--" (or after a bare "--");
# positional arguments are left in "$@". Because this file is sourced, "shift"
# and "exit" act on the caller.

_po_prog=$(basename -- "$0")

# The configuration block, read before any option changes a value: names,
# defaults and comments for --help.
_po_names=()
_po_defaults=()
_po_notes=()
# name=value, value optionally quoted, then an optional "# comment".
_po_re='^([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'"'"'[^'"'"']*'"'"'|[^[:space:]]*)[[:space:]]*(#[[:space:]]*(.*))?$'
if [ -f "$0" ]; then
  _po_in=false
  while IFS= read -r _po_line || [ -n "$_po_line" ]; do
    case "$_po_line" in
      "# begin configuration"*) _po_in=true; continue ;;
      "# end configuration"*) break ;;
    esac
    if $_po_in && [[ "$_po_line" =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]]; then
      _po_name=${BASH_REMATCH[1]}
      _po_names+=("$_po_name")
      _po_defaults+=("${!_po_name-}")
      if [[ "$_po_line" =~ $_po_re ]]; then
        _po_notes+=("${BASH_REMATCH[4]}")
      else
        _po_notes+=("")
      fi
    fi
  done < "$0"
fi

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      else
        printf 'Usage: %s [options] <args>\n' "$_po_prog"
      fi
      if [ ${#_po_names[@]} -gt 0 ]; then
        printf '\nOptions, each with its default (--stop_stage 3, --stop-stage 3 and --stop_stage=3 all work):\n'
        for _po_i in "${!_po_names[@]}"; do
          _po_val=${_po_defaults[$_po_i]}
          if [[ -z "$_po_val" || "$_po_val" == *[[:space:]]* ]]; then
            _po_val="\"$_po_val\""
          fi
          _po_opt="--${_po_names[$_po_i]} $_po_val"
          if [ ${#_po_opt} -ge 30 ] && [ -n "${_po_notes[$_po_i]}" ]; then  # the note on a line of its own
            printf '  %s\n  %-30s %s\n' "$_po_opt" "" "${_po_notes[$_po_i]}"
          else
            printf '  %-30s %s\n' "$_po_opt" "${_po_notes[$_po_i]}"
          fi
        done
        printf '  %-30s %s\n' "--config FILE" "source FILE (shell assignments of these options) at that point"
      fi
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      _po_opt=${1%%=*}
      _po_val=${1#*=}
      shift
      ;;
    --*)
      _po_opt=$1
      if [ $# -lt 2 ]; then
        printf '%s: missing value for option %s\n' "$_po_prog" "$_po_opt" >&2
        exit 1
      fi
      _po_val=$2
      shift 2
      ;;
    *)
      break
      ;;
  esac

  _po_name=${_po_opt#--}
  _po_name=${_po_name//-/_}

  if [ "$_po_name" = config ]; then
    if [ ! -f "$_po_val" ]; then
      printf '%s: config file not found: %s\n' "$_po_prog" "$_po_val" >&2
      exit 1
    fi
    # shellcheck source=/dev/null
    . "$_po_val"
    continue
  fi

  # Reject names that are not shell identifiers (so the indirect expansion
  # below is safe) and our own internal variables.
  if [[ ! "$_po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ || "$_po_name" == _po_* ]] ||
    [ -z "${!_po_name+x}" ]; then
    printf '%s: unknown option %s (run with --help for usage)\n' \
      "$_po_prog" "$_po_opt" >&2
    exit 1
  fi

  # A variable defaulting to true/false is a boolean flag; keep it one.
  _po_cur=${!_po_name}
  if [[ "$_po_cur" == true || "$_po_cur" == false ]] &&
    [[ "$_po_val" != true && "$_po_val" != false ]]; then
    printf '%s: option %s expects true or false, got "%s"\n' \
      "$_po_prog" "$_po_opt" "$_po_val" >&2
    exit 1
  fi

  # printf -v assigns without evaluating the value as shell code.
  printf -v "$_po_name" '%s' "$_po_val"
done

unset _po_prog _po_opt _po_val _po_name _po_cur _po_names _po_defaults _po_notes _po_re _po_in _po_line _po_i

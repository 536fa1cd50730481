#!/usr/bin/env bash
# Combine prepared LibriSpeech parts into one training or dev list, as the 960 h recipes do
# (train = train-clean-100 + train-clean-360 + train-other-500; dev = dev-clean + dev-other).
# Only data.list is combined: it is what training reads; each part keeps its own Kaldi dir.
# Usage: local/combine_parts.sh DATA TARGET PART...
set -euo pipefail
[ $# -ge 3 ] || { echo "Usage: $0 DATA TARGET PART..." >&2; exit 1; }
data=$1 target=$2
shift 2
lists=()
for part in "$@"; do
  list="${data}/${part//-/_}/data.list"
  [ -f "${list}" ] || { echo "$0: missing ${list}; was part ${part} prepared?" >&2; exit 1; }
  lists+=("${list}")
done
mkdir -p "${data}/${target}"
cat "${lists[@]}" > "${data}/${target}/data.list.tmp"
mv "${data}/${target}/data.list.tmp" "${data}/${target}/data.list"
echo "$0: ${data}/${target}/data.list: $(wc -l < "${data}/${target}/data.list") utterances from $*"

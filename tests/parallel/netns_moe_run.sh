#!/usr/bin/env bash
# `moe run --tp 2` and `--pp 2` across two hosts made of network namespaces (netns/): the hidden
# states and all-reduces cross TCP between 10.213.0.1 and 10.213.0.2, and the tokens are those of
# one process. Exits 77 where namespaces cannot be made.
#   netns_moe_run.sh MOE WORKDIR
set -u
moe="$1"
work="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$work"
export MOE_ERR_DIR="$work"
"$moe" make-tiny --arch mixtral --out "$work/tiny" --seed 5 >/dev/null || exit 1
gen=(run --model "$work/tiny" --tokens 1,15,27,300,42 -n 12 --print-ids --ignore-eos -t 1)
want=$("$moe" "${gen[@]}" 2>/dev/null)
failures=0
for flags in "--tp 2" "--pp 2" "--ep 2"; do
  # shellcheck disable=SC2086 # flags is two words on purpose
  # Each rank's stderr (the stats block) into its own file, so stdout holds the tokens alone.
  rm -f "$work"/err-*.txt
  NETNS_MIN_BYTES=${NETNS_MIN_BYTES:-1000} bash "$here/netns/run_across_hosts.sh" 2 -x MOE_ERR_DIR -- \
    sh -c 'exec "$0" "$@" 2>"$MOE_ERR_DIR/err-$OMPI_COMM_WORLD_RANK.txt"' "$moe" "${gen[@]}" $flags \
    >"$work/out.txt" 2>&1
  rc=$?
  [ "$rc" -eq 77 ] && { cat "$work/out.txt"; exit 77; }
  if [ "$rc" -eq 0 ] && grep -qxF -- "$want" "$work/out.txt"; then
    echo "across hosts $flags: same tokens: $want"
    grep -E "^netns: .*(bytes|eth0)" "$work/out.txt" | sed 's/^/  /'
    grep -hE "rank [01] on " "$work"/err-0.txt | sed 's/^ */  /'
  else
    echo "FAILED: across hosts $flags (exit $rc): want '$want'"
    tail -20 "$work/out.txt" "$work"/err-*.txt
    failures=$((failures + 1))
  fi
done
[ "$failures" -eq 0 ] && echo "netns moe run: ok" || exit 1

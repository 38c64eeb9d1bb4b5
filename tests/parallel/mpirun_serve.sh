#!/usr/bin/env bash
# `moe serve` under mpirun: rank 0 serves HTTP and drives the batch engine, the other ranks run its
# multi-sequence steps. Four concurrent greedy completions (continuous batching) get the texts one
# process gives, for --tp 2, --pp 2, --ep 2 and --tp 2 --pp 2, as stored and q4 (MOE_QLINEAR_FLOAT=1 as
# in mpirun_run.sh), and with offloaded experts under --ep 2 and --pp 2; SIGTERM to mpirun stops every rank within seconds, and rank 0 prints every rank's
# stats. Prints "mpirun serve tests: ok".
#   mpirun_serve.sh MOE WORKDIR
set -u
moe="$1"
work="$2"
mkdir -p "$work"
failures=0
fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}
export MOE_QLINEAR_FLOAT=1
"$moe" make-tiny --arch qwen2_moe --out "$work/tiny" --seed 5 >/dev/null || exit 1
rm -rf "$work/tiny-q4"
"$moe" convert --model "$work/tiny" --quant all=q4g32 --out "$work/tiny-q4" >/dev/null 2>&1 || exit 1

pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; pkill -9 -f "$work/tiny" 2>/dev/null; true; }
trap cleanup EXIT

# start LOG CMD...: starts the server CMD (ending in `moe serve ...`) in the background and waits (at
# most 60 s) for /health; sets $pid and $base.
start() {
  local log="$1"
  shift
  rm -f "$log"  # a stale log would give the last server's port
  "$@" --port 0 --threads 1 --ctx-size 128 --max-seqs 4 2>"$log" &
  pid=$!
  local port=""
  for _ in $(seq 1 600); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log")
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  base="http://127.0.0.1:$port"
  curl -sf "$base/health" >/dev/null
}

# completions: four requests at once (they share steps), the generated texts in request order.
completions() {
  local i
  for i in 0 1 2 3; do
    curl -sf "$base/v1/completions" -H 'Content-Type: application/json' \
      -d "{\"prompt\": [1, $((15 + i)), 27, $((300 + 7 * i))], \"max_tokens\": $((6 + 3 * i)), \"temperature\": 0, \"ignore_eos\": true}" \
      >"$work/out.$i" &
  done
  wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null
  for i in 0 1 2 3; do
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(repr(d["choices"][0]["text"]), d["usage"]["completion_tokens"])' \
      "$work/out.$i" 2>/dev/null || echo "request $i failed: $(cat "$work/out.$i")"
  done
}

# stop_server WHAT [mpirun]: SIGTERM to the server (rank 0 under mpirun: the clean stop; with
# "mpirun", to mpirun itself), then at most 20 s for every rank to exit.
stop_server() {
  local target="$pid" rank0
  rank0=$(sed -n 's|.*rank 0 of [0-9]* is pid \([0-9]*\).*|\1|p' "$log" 2>/dev/null)
  [ -n "$rank0" ] && [ "${2:-}" != mpirun ] && target=$rank0
  kill -TERM "$target"
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then fail "$1: still running 20 s after SIGTERM"; kill -9 "$pid"; fi
  wait "$pid" 2>/dev/null
  pid=""
}

for model in "$work/tiny" "$work/tiny-q4"; do
  log="$work/single.log"
  start "$log" "$moe" serve --model "$model" || { fail "single-process server did not start"; tail -5 "$work/single.log"; continue; }
  want=$(completions)
  stop_server single
  echo "one process, $(basename "$model"):"
  echo "$want"
  splits=("2 --tp 2" "2 --pp 2" "2 --ep 2" "4 --tp 2 --pp 2")
  [ "$model" = "$work/tiny-q4" ] && splits+=("2 --ep 2 --host-mem 64M" "2 --pp 2 --host-mem 64M")
  for split in "${splits[@]}"; do
    read -r np flags <<<"$split"
    log="$work/mpi.log"
    # shellcheck disable=SC2086
    if ! start "$log" timeout -k 5 300 mpirun --allow-run-as-root --oversubscribe -np "$np" "$moe" serve --model "$model" $flags; then
      fail "mpirun -np $np $flags: the server did not start"
      tail -5 "$log"
      stop_server "$flags"
      continue
    fi
    got=$(completions)
    stop_server "$flags"
    if [ "$got" = "$want" ] && ! grep -q "failed" <<<"$got"; then
      echo "same completions: $(basename "$model") -np $np $flags"
    else
      fail "$(basename "$model") -np $np $flags: got"
      echo "$got"
      tail -5 "$log"
    fi
    grep -q "rank $((np - 1)) on .*collectives" "$log" && grep -q "moe serve: stopped" "$log" ||
      { fail "-np $np $flags: no clean stop with every rank's stats"; tail -5 "$log"; }
  done
done

# SIGTERM to mpirun (what Ctrl-C does) also ends every rank, with no hang.
log="$work/mpi.log"
start "$log" timeout -k 5 300 mpirun --allow-run-as-root --oversubscribe -np 2 "$moe" serve --model "$work/tiny" --tp 2 ||
  fail "--tp 2 did not start"
t0=$(date +%s.%N)
stop_server "mpirun SIGTERM" mpirun
for _ in $(seq 1 100); do pgrep -f "serve --model $work/tiny " >/dev/null || break; sleep 0.1; done
pgrep -f "serve --model $work/tiny " >/dev/null && fail "ranks left running 10 s after mpirun's SIGTERM" ||
  echo "mpirun SIGTERM: every rank gone after $(echo "$(date +%s.%N) - $t0" | bc) s"
if [ "$failures" -eq 0 ]; then echo "mpirun serve tests: ok"; else echo "mpirun serve tests: $failures FAILED"; exit 1; fi

#!/usr/bin/env bash
# `moe coordinator` + `moe worker` as processes: the job's tokens equal one process's (1 and 2
# mpirun workers, pipeline and tensor parallel); a wrong token is refused and logged; a worker
# killed with SIGKILL and (where network namespaces can be made) a cut link are each detected
# within 2 heartbeat intervals, and the survivors stop with a message instead of hanging. Prints
# the detection times and "coordinator tests: ok".
#   coordinator_run.sh MOE WORKDIR NETNS_HOSTS_SH
set -u
moe="$1"
work="$2"
netns="$3"
mkdir -p "$work"
failures=0
fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}
mpi=(timeout -k 5 120 mpirun --allow-run-as-root --oversubscribe)
"$moe" make-tiny --arch qwen2_moe --out "$work/tiny" --seed 3 >/dev/null || exit 1
prompt=1,15,27,300,42
want=$("$moe" run --model "$work/tiny" --tokens $prompt -n 12 --print-ids --ignore-eos -t 1 2>/dev/null | tr -s ' ' | sed 's/ $//')
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; bash "$netns" down moeco >/dev/null 2>&1; true; }
trap cleanup EXIT

# wait_for FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_for() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
port() { sed -n 's|.*listening on [0-9.]*:\([0-9]*\).*|\1|p' "$1" | head -1; }
json_tokens() { python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1])).get("token_ids", []))))' "$1"; }

# ---- the tokens of one process ----
for run in "1" "2" "2 --tp 2" "2 --pp 2"; do
  read -r n flags <<<"$run"
  rm -f "$work/co.json"
  rm -f "$work/co.err"  # a stale log would give the last coordinator's port
  # shellcheck disable=SC2086
  timeout 120 "$moe" coordinator --model "$work/tiny" --workers "$n" $flags --tokens $prompt -n 12 \
    --json "$work/co.json" >"$work/co.out" 2>"$work/co.err" &
  co=$!
  pids+=("$co")
  wait_for "$work/co.err" "listening on" 10 || { fail "coordinator did not start"; cat "$work/co.err"; continue; }
  "${mpi[@]}" -np "$n" "$moe" worker --coordinator "127.0.0.1:$(port "$work/co.err")" -t 1 >"$work/w.out" 2>&1
  rc=$?
  wait "$co"
  crc=$?
  got=$(json_tokens "$work/co.json" 2>/dev/null)
  if [ "$rc" -eq 0 ] && [ "$crc" -eq 0 ] && [ "$got" = "$want" ]; then
    echo "same tokens: $n worker(s) $flags: $(grep -m1 -E '^tp ' "$work/co.err")"
  else
    fail "$n workers $flags: workers exit $rc, coordinator exit $crc; want '$want', got '$got'"
    tail -n 20 "$work/co.err" "$work/w.out"
  fi
done
# ---- workers started by hand (no mpirun): the data plane is TCP between them ----
# by_hand LABEL NS1 NS2 HOST1 HOST2 COORDINATOR_ADDR_HOST FLAGS: coordinator + worker 1 in NS1 (""
# = here), worker 2 in NS2; the job's tokens must be one process's.
by_hand() {
  local label="$1" ns1="$2" ns2="$3" h1="$4" h2="$5" chost="$6" flags="$7" in1=() in2=()
  [ -n "$ns1" ] && in1=(ip netns exec "$ns1")
  [ -n "$ns2" ] && in2=(ip netns exec "$ns2")
  rm -f "$work/co.json"
  rm -f "$work/co.err"  # a stale log would give the last coordinator's port
  # shellcheck disable=SC2086
  "${in1[@]}" timeout 60 "$moe" coordinator --listen "$chost:0" --token s3cret --model "$work/tiny" --workers 2 $flags \
    --tokens $prompt -n 12 --json "$work/co.json" >/dev/null 2>"$work/co.err" &
  local co=$!
  pids+=("$co")
  wait_for "$work/co.err" "listening on" 10 || { fail "$label: coordinator did not start"; return; }
  local addr="$chost:$(port "$work/co.err")"
  "${in1[@]}" timeout 60 "$moe" worker --coordinator "$addr" --token s3cret --data-host "$h1" -t 1 >"$work/w1.out" 2>&1 &
  local w1=$!
  "${in2[@]}" timeout 60 "$moe" worker --coordinator "$addr" --token s3cret --data-host "$h2" -t 1 >"$work/w2.out" 2>&1
  local rc2=$?
  wait "$w1"
  local rc1=$?
  wait "$co"
  local crc=$?
  local got
  got=$(json_tokens "$work/co.json" 2>/dev/null)
  if [ "$rc1$rc2$crc" = "000" ] && [ "$got" = "$want" ]; then
    echo "same tokens: $label $flags (TCP data plane $h1 <-> $h2)"
  else
    fail "$label $flags: exits $rc1 $rc2 $crc; want '$want', got '$got'"
    tail -n 4 "$work/co.err" "$work/w1.out" "$work/w2.out"
  fi
}
by_hand "2 workers by hand" "" "" 127.0.0.1 127.0.0.1 127.0.0.1 "--tp 2"
by_hand "2 workers by hand" "" "" 127.0.0.1 127.0.0.1 127.0.0.1 "--pp 2"

grep -q "^tokens/s" "$work/co.err" && grep -q "^stage 1 " "$work/co.err" && echo "figures: ok" || fail "no figures"

# ---- a wrong token is refused ----
rm -f "$work/co.err"  # a stale log would give the last coordinator's port
timeout 60 "$moe" coordinator --model "$work/tiny" --workers 1 --token s3cret --tokens $prompt -n 4 \
  --timeout 20 >/dev/null 2>"$work/co.err" &
co=$!
pids+=("$co")
wait_for "$work/co.err" "listening on" 10
addr="127.0.0.1:$(port "$work/co.err")"
if "$moe" worker --coordinator "$addr" --token wrong --no-measure -t 1 >"$work/w.out" 2>&1; then
  fail "a worker with a wrong token was accepted"
elif grep -q "UNAUTHENTICATED" "$work/w.out" && wait_for "$work/co.err" "refused Register .*wrong token" 5; then
  echo "wrong token: refused: $(grep -m1 'refused' "$work/co.err")"
else
  fail "wrong token: messages"
  cat "$work/w.out" "$work/co.err"
fi
"$moe" worker --coordinator "$addr" --no-measure -t 1 >"$work/w.out" 2>&1 && fail "a worker without the token was accepted"
grep -q "UNAUTHENTICATED" "$work/w.out" || fail "no token: $(cat "$work/w.out")"
kill "$co" 2>/dev/null
wait "$co" 2>/dev/null

# ---- detection: SIGKILL, and a cut link ----
# detect LABEL COORDINATOR_LOG WORKER_LOG ACTION...: the coordinator (waiting for a third worker)
# must end worker_lost within 2 intervals of the victim's last heartbeat, the survivor exit 3.
check_detection() {
  local label="$1" co="$2" survivor="$3" survivor_log="$4" t0="$5"
  local crc src i t_survivor="" t_co=""
  for ((i = 0; i < 400; i++)); do  # at most 20 s
    [ -z "$t_survivor" ] && ! kill -0 "$survivor" 2>/dev/null && t_survivor=$(echo "$(date +%s.%N) - $t0" | bc | cut -c1-4)
    [ -z "$t_co" ] && ! kill -0 "$co" 2>/dev/null && t_co=$(echo "$(date +%s.%N) - $t0" | bc | cut -c1-4)
    [ -n "$t_survivor" ] && [ -n "$t_co" ] && break
    sleep 0.05
  done
  wait "$co"
  crc=$?
  wait "$survivor"
  src=$?
  local silent
  silent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["detected_after_s"])' "$work/co.json" 2>/dev/null)
  if [ "$crc" -eq 2 ] && [ "$src" -eq 3 ] && grep -q "lost" "$work/co.err" &&
    python3 -c "import sys; sys.exit(0 if float('$silent') <= 2 * 0.2 + 0.1 else 1)" 2>/dev/null; then
    echo "$label: detected: $(grep -m1 -o 'worker .* lost: .*' "$work/co.err"); survivor exited ${t_survivor} s and the coordinator ${t_co} s after the fault"
    echo "  survivor: $(grep -m1 'stopping' "$survivor_log")"
  else
    fail "$label: coordinator exit $crc (want 2), survivor exit $src (want 3), silent '$silent' s"
    tail -n 3 "$work/co.err" "$survivor_log"
  fi
}

rm -f "$work/co.json"
rm -f "$work/co.err"  # a stale log would give the last coordinator's port
timeout 60 "$moe" coordinator --model "$work/tiny" --workers 3 --heartbeat-ms 200 --tokens $prompt -n 4 \
  --json "$work/co.json" >/dev/null 2>"$work/co.err" &
co=$!
pids+=("$co")
wait_for "$work/co.err" "listening on" 10
addr="127.0.0.1:$(port "$work/co.err")"
timeout 60 "$moe" worker --coordinator "$addr" --no-measure -t 1 >"$work/w1.out" 2>&1 &
w1=$!
timeout 60 "$moe" worker --coordinator "$addr" --no-measure -t 1 >"$work/w2.out" 2>&1 &
w2=$!
pids+=("$w1" "$w2")
wait_for "$work/co.err" "2 of 3" 10 || fail "kill -9: workers did not register"
sleep 0.5
t0=$(date +%s.%N)
kill -9 "$(pgrep -P "$w2" -f 'moe worker' || echo "$w2")" 2>/dev/null
kill -9 "$w2" 2>/dev/null
check_detection "kill -9" "$co" "$w1" "$work/w1.out" "$t0"

if bash "$netns" check >/dev/null 2>&1; then
  bash "$netns" up 2 moeco >/dev/null || fail "netns up"
  a1=$(bash "$netns" addr 1)
  a2=$(bash "$netns" addr 2)
  by_hand "2 hosts, workers by hand" moeco-h1 moeco-h2 "$a1" "$a2" "$a1" "--tp 2"
  by_hand "2 hosts, workers by hand" moeco-h1 moeco-h2 "$a1" "$a2" "$a1" "--pp 2"
  echo "  host 2 eth0 RX/TX bytes: $(bash "$netns" bytes moeco 2)"
  rm -f "$work/co.json"
  rm -f "$work/co.err"  # a stale log would give the last coordinator's port
  ip netns exec moeco-h1 timeout 60 "$moe" coordinator --listen "$a1:50555" --token s3cret --model "$work/tiny" \
    --workers 3 --heartbeat-ms 200 --tokens $prompt -n 4 --json "$work/co.json" >/dev/null 2>"$work/co.err" &
  co=$!
  wait_for "$work/co.err" "listening on" 10
  ip netns exec moeco-h1 timeout 60 "$moe" worker --coordinator "$a1:50555" --token s3cret --no-measure -t 1 \
    >"$work/w1.out" 2>&1 &
  w1=$!
  ip netns exec moeco-h2 timeout 60 "$moe" worker --coordinator "$a1:50555" --token s3cret --no-measure -t 1 \
    >"$work/w2.out" 2>&1 &
  w2=$!
  pids+=("$co" "$w1" "$w2")
  wait_for "$work/co.err" "2 of 3" 10 || fail "cut link: workers did not register"
  sleep 0.5
  t0=$(date +%s.%N)
  bash "$netns" link-down moeco 2
  check_detection "cut link (host 2's veth down)" "$co" "$w1" "$work/w1.out" "$t0"
  wait "$w2"
  w2rc=$?
  [ "$w2rc" -eq 3 ] && grep -q "unreachable" "$work/w2.out" && echo "  cut-off worker: $(grep -m1 stopping "$work/w2.out")" ||
    fail "cut-off worker exit $w2rc: $(cat "$work/w2.out")"
  bash "$netns" link-up moeco 2

  # During a run: workers by hand on the two hosts generate with --tp 2 (TCP all-reduces every
  # layer); host 2's link goes down once they are running. TCP alone would notice only after its
  # keepalive (~25 s); the heartbeats stop the survivor, blocked in an all-reduce, at once.
  rm -f "$work/co.json"
  rm -f "$work/co.err"  # a stale log would give the last coordinator's port
  ip netns exec moeco-h1 timeout 60 "$moe" coordinator --listen "$a1:50556" --token s3cret --model "$work/tiny" \
    --workers 2 --tp 2 --heartbeat-ms 200 --tokens $prompt -n 4000 --json "$work/co.json" >/dev/null 2>"$work/co.err" &
  co=$!
  wait_for "$work/co.err" "listening on" 10
  ip netns exec moeco-h1 timeout 60 "$moe" worker --coordinator "$a1:50556" --token s3cret --data-host "$a1" \
    --no-measure -t 1 >"$work/w1.out" 2>&1 &
  w1=$!
  ip netns exec moeco-h2 timeout 60 "$moe" worker --coordinator "$a1:50556" --token s3cret --data-host "$a2" \
    --no-measure -t 1 >"$work/w2.out" 2>&1 &
  w2=$!
  pids+=("$co" "$w1" "$w2")
  if wait_for "$work/co.err" "all 2 workers ready" 20; then
    sleep 0.3
    t0=$(date +%s.%N)
    bash "$netns" link-down moeco 2
    check_detection "cut link during a --tp 2 run" "$co" "$w1" "$work/w1.out" "$t0"
  else
    fail "during a run: the workers did not get ready"
  fi
  wait "$w2" 2>/dev/null
  bash "$netns" down moeco >/dev/null
else
  echo "cut link: skipped ($(bash "$netns" check))"
fi

if [ "$failures" -eq 0 ]; then echo "coordinator tests: ok"; else echo "coordinator tests: $failures FAILED"; exit 1; fi

#!/usr/bin/env bash
# dead_rank.sh: kill one rank of a running MPI job with SIGKILL and check that the job dies with it.
#
#   dead_rank.sh [--hosts] [--rank R] [--ready REGEX] N -- COMMAND ARGS...
#
# Starts  mpirun -np N COMMAND ARGS...  (default: plainly on this machine, over loopback; with
# --hosts: across N network-namespace hosts through run_across_hosts.sh, so rank R sits on host R+1
# and its death is reported over TCP by that host's orted).  COMMAND should block in communication
# (e.g. mpi_ping --hang-after-start).  Once all N ranks exist (and, with --ready, once the job's
# output matches REGEX; otherwise 1 s later) rank R (default N-1, must be non-zero) gets SIGKILL.
# Then it asserts, all bounded in time:
#   - mpirun exits within DEAD_RANK_LIMIT seconds (default 20) of the kill,
#   - with a non-zero status,
#   - and its output names the dead rank ("rank R") or its pid,
#   - and no process of the job is left 5 s later (leftovers are SIGKILLed and fail the check).
# Prints "dead rank: stopped in X s" and exits 0 on success; exits 1 on failure; 77 if --hosts is
# given and namespaces cannot be made here.
#
# Rank processes are found without help from the program: mpirun runs with a unique
# DEAD_RANK_TAG=... in its environment (forwarded with -x), and each rank's /proc/PID/environ holds
# that tag and OMPI_COMM_WORLD_RANK.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() {
  echo "usage: $0 [--hosts] [--rank R] [--ready REGEX] N -- COMMAND ARGS..." >&2
  exit 2
}
hosts=0 rank="" ready=""
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) hosts=1; shift ;;
    --rank) rank="${2:-}"; shift 2 || usage ;;
    --ready) ready="${2:-}"; shift 2 || usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
n="${1:-}"
[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 2 ] || { echo "dead_rank: N must be >= 2" >&2; usage; }
shift
[ "${1:-}" = "--" ] || usage
shift
[ $# -ge 1 ] || usage
rank="${rank:-$((n - 1))}"
[[ "$rank" =~ ^[0-9]+$ ]] && [ "$rank" -ge 1 ] && [ "$rank" -lt "$n" ] || { echo "dead_rank: --rank must be in 1..N-1" >&2; exit 2; }
limit="${DEAD_RANK_LIMIT:-20}"
start_limit="${DEAD_RANK_START_LIMIT:-60}"

if [ "$hosts" = 1 ]; then
  reason=$("$here/netns_hosts.sh" check)
  if [ $? -ne 0 ]; then
    echo "$reason"
    exit 77
  fi
fi

tag="dr-$$-$RANDOM$RANDOM"
log="$(mktemp /tmp/dead_rank.XXXXXX.log)"
job="" rankpids=""

# pids of every process carrying our tag (rank R's only, if given)
tagged() {
  local f p
  for f in $(grep -lzx "DEAD_RANK_TAG=$tag" /proc/[0-9]*/environ 2>/dev/null); do
    p="${f#/proc/}"
    p="${p%/environ}"
    if [ $# -eq 0 ] || grep -qzx "OMPI_COMM_WORLD_RANK=$1" "$f" 2>/dev/null; then echo "$p"; fi
  done
}
ranks_up() {
  local r c=0
  for ((r = 0; r < n; r++)); do [ -n "$(tagged "$r")" ] && c=$((c + 1)); done
  echo "$c"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

fail() {
  echo "dead rank: FAILED: $*"
  echo "---- job output ----"
  cat "$log"
  echo "--------------------"
  exit 1
}

cleanup() {
  local rc=$? left
  if [ -n "$job" ] && kill -0 "$job" 2>/dev/null; then
    kill -TERM "$job" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$job" 2>/dev/null
  fi
  left="$(tagged) $rankpids"
  # shellcheck disable=SC2086
  [ -n "$left" ] && kill -KILL $left 2>/dev/null
  rm -f "$log"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$hosts" = 1 ]; then
  DEAD_RANK_TAG="$tag" "$here/run_across_hosts.sh" "$n" -x DEAD_RANK_TAG -- "$@" >"$log" 2>&1 &
  job=$!
  echo "dead rank: started $n ranks across namespace hosts (run_across_hosts.sh, pid $job): $*"
else
  mpi=(mpirun -np "$n" --oversubscribe -x DEAD_RANK_TAG)
  [ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
  DEAD_RANK_TAG="$tag" "${mpi[@]}" "$@" >"$log" 2>&1 &
  job=$!
  echo "dead rank: started ${mpi[*]} $* (pid $job)"
fi

# wait (bounded) for all N ranks to exist, and for the ready line if any
t0=$SECONDS
while :; do
  kill -0 "$job" 2>/dev/null || fail "the job exited before all $n ranks were up"
  if [ "$(ranks_up)" = "$n" ] && { [ -z "$ready" ] || grep -Eq -- "$ready" "$log"; }; then break; fi
  [ $((SECONDS - t0)) -ge "$start_limit" ] && fail "not all $n ranks up (or no match for --ready) after $start_limit s"
  sleep 0.2
done
[ -z "$ready" ] && sleep 1
victims="$(tagged "$rank" | tr '\n' ' ')"
rankpids="$(tagged | tr '\n' ' ')"
[ -n "${victims// /}" ] || fail "rank $rank has no process any more"
echo "dead rank: all $n ranks up after $((SECONDS - t0)) s; SIGKILL to rank $rank (pid ${victims% }) at $(date +%T.%N | cut -c1-12)"
tk="$(now)"
# shellcheck disable=SC2086
kill -KILL $victims

# mpirun must go within $limit seconds
deadline=$(($(date +%s) + limit))
while kill -0 "$job" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then
  fail "mpirun still running $limit s after rank $rank was killed"
fi
wait "$job"
rc=$?
te="$(now)"
job=""
took="$(elapsed "$tk" "$te")"
echo "dead rank: mpirun exited with status $rc $took s after the kill"
[ "$rc" -ne 0 ] || fail "mpirun exited 0 although rank $rank was killed"

# the output must name the dead rank or its pid, on a line that says what happened to it (so the
# program's own "rank R ..." lines do not count)
who="rank $rank\\b"
for p in $victims; do who+="|pid $p\\b"; done
line="$(grep -Ei -- "$who" "$log" | grep -Ei -m1 -- "signal|killed|exited|terminat|abort|died|lost|fail")" ||
  fail "mpirun's output does not say that rank $rank (pid ${victims% }) died"
echo "dead rank: mpirun said: $(echo "$line" | sed 's/^ *//')"

# nothing of the job may be left over (give the daemons up to 5 s to go): neither a process with
# our tag nor any rank process seen at start (an exiting process's environ can no longer be read)
alive() {
  local p st
  for p in "$@"; do
    st="$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" || continue
    [ -n "$st" ] && [ "$st" != Z ] && echo "$p"
  done
}
for ((i = 0; i < 50; i++)); do
  left="$( (tagged; alive $rankpids) | sort -u | tr '\n' ' ')"
  [ -z "${left// /}" ] && break
  sleep 0.1
done
if [ -n "${left// /}" ]; then
  ps -o pid,ppid,stat,args -p "${left// /,}" 2>/dev/null | sed 's/,$//'
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null
  fail "processes of the job left 5 s after mpirun exited: $left"
fi
[ "$hosts" = 1 ] && grep -E '^netns: (mpirun exited|removed)' "$log" | sed 's/^/dead rank: /'
echo "dead rank: no process of the job left"
echo "dead rank: stopped in $took s"
exit 0

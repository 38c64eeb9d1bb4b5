#!/usr/bin/env bash
# run_across_hosts.sh: run an MPI program with one rank on each of N emulated hosts (network
# namespaces on one bridge), so every byte between ranks crosses TCP between distinct addresses.
#
#   run_across_hosts.sh N [MPIRUN_OPTIONS...] -- COMMAND ARGS...
#
# Makes hosts PREFIX-h1..hN (PREFIX unique per call) with netns_hosts.sh, runs mpirun inside host
# 1's namespace with netns_agent.sh as its "ssh", prints the program's output, then every host's
# eth0 byte counters moved during the run, tears everything down (trap EXIT) and exits with
# mpirun's status.  Exits 77 (ctest SKIP_RETURN_CODE) when namespaces cannot be made here.
#
# Environment:
#   NETNS_SUBNET     first three octets of the subnet (default 10.213.0); host i is NETNS_SUBNET.i
#   NETNS_TIMEOUT    seconds before mpirun is stopped (default 600; then exit 124)
#   NETNS_MIN_BYTES  if set, fail (exit 1) unless every host sent and received at least that many
#                    bytes over its eth0 (proof that the payload really crossed the veths)
#   NETNS_UTS        1 (default): each host gets its own hostname (PREFIX-hI); 0: keep this one
#   NETNS_KEEP_LOG   if set, a directory to copy the hostfile and agent log into
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hosts="$here/netns_hosts.sh"
agent="$here/netns_agent.sh"

usage() {
  echo "usage: $0 N [MPIRUN_OPTIONS...] -- COMMAND ARGS..." >&2
  exit 2
}
[ $# -ge 3 ] || usage
n="$1"
shift
[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 250 ] || usage
extra=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  extra+=("$1")
  shift
done
[ "${1:-}" = "--" ] || usage
shift
[ $# -ge 1 ] || usage

# Can we make namespaces at all?  (prints "netns: not permitted here: <reason>")
reason=$("$hosts" check)
if [ $? -ne 0 ]; then
  echo "$reason"
  exit 77
fi
mpirun_bin="$(command -v mpirun)" || { echo "netns: no mpirun on PATH"; exit 1; }

subnet="$(NETNS_SUBNET="${NETNS_SUBNET:-10.213.0}" "$hosts" addr 0)" || exit 2
subnet="${subnet%.0}"
export NETNS_SUBNET="$subnet"
export NETNS_PREFIX="mrh$$"
export NETNS_UTS="${NETNS_UTS:-1}"
tmp="$(mktemp -d /tmp/netns-run.XXXXXX)"
export NETNS_AGENT_LOG="$tmp/agent.log"

job=""
cleanup() {
  local rc=$? i
  if [ -n "$job" ] && kill -0 "$job" 2>/dev/null; then
    # interrupted: stop mpirun (timeout passes TERM on to it; it takes its daemons down), bounded
    echo "netns: stopping mpirun (pid $job)"
    kill -TERM "$job" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$job" 2>/dev/null
  fi
  if [ -n "${NETNS_KEEP_LOG:-}" ]; then mkdir -p "$NETNS_KEEP_LOG" && cp -f "$tmp"/* "$NETNS_KEEP_LOG"/ 2>/dev/null; fi
  "$hosts" down "$NETNS_PREFIX" >/dev/null
  rm -rf "$tmp"
  echo "netns: removed hosts $NETNS_PREFIX-h1..h$n and switch $NETNS_PREFIX-sw"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$hosts" up "$n" "$NETNS_PREFIX" || { echo "netns: could not make $n hosts"; exit 1; }

for ((i = 1; i <= n; i++)); do echo "$subnet.$i slots=1"; done >"$tmp/hostfile"

declare -a rx0 tx0
for ((i = 1; i <= n; i++)); do
  read -r "rx0[i]" "tx0[i]" < <("$hosts" bytes "$NETNS_PREFIX" "$i")
done

# mpirun options, and why:
#   plm_rsh_agent         start the remote orted daemons through netns_agent.sh instead of ssh
#   plm_rsh_no_tree_spawn daemons are all started by mpirun itself (a tree spawn would make
#                         orted call the agent, fine here too, but harder to follow)
#   pml ob1, btl self,tcp MPI traffic only over TCP: no vader (shared memory) and no UCX, which
#                         could otherwise move bytes through /dev/shm or CMA between "hosts"
#   osc ^ucx              keep one-sided MPI off UCX for the same reason
#   *_if_include subnet   OOB (daemon wire-up) and BTL sockets only on the namespace subnet
#   --map-by node         one rank per host, in host order
#   -x PATH ...           the ranks get mpirun's PATH/LD_LIBRARY_PATH/OMP_NUM_THREADS
# shellcheck disable=SC2054 # "self,tcp" is one mpirun argument
mpi=("$mpirun_bin" -np "$n" --hostfile "$tmp/hostfile" --map-by node --oversubscribe
  --mca plm_rsh_agent "$agent" --mca plm_rsh_no_tree_spawn 1
  --mca pml ob1 --mca btl self,tcp --mca osc ^ucx
  --mca oob_tcp_if_include "$subnet.0/24" --mca btl_tcp_if_include "$subnet.0/24")
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
for v in PATH LD_LIBRARY_PATH OMP_NUM_THREADS; do
  [ -n "${!v:-}" ] && mpi+=(-x "$v")
done
mpi+=("${extra[@]}" "$@")

echo "netns: mpirun in $NETNS_PREFIX-h1 ($subnet.1): ${mpi[*]}"
t0=$(date +%s.%N)
# mpirun runs in the background so that a TERM/INT to this script is handled at once (bash runs
# traps only between commands, and "wait" is interruptible); its stdin is still ours.
if [ "$NETNS_UTS" = 1 ] && command -v unshare >/dev/null 2>&1; then
  ip netns exec "$NETNS_PREFIX-h1" unshare --uts sh -c 'hostname "$1" && shift && exec "$@"' netns-run \
    "$NETNS_PREFIX-h1" timeout -k 10 "${NETNS_TIMEOUT:-600}" "${mpi[@]}" <&0 &
else
  ip netns exec "$NETNS_PREFIX-h1" timeout -k 10 "${NETNS_TIMEOUT:-600}" "${mpi[@]}" <&0 &
fi
job=$!
wait "$job"
rc=$?
job=""
echo "netns: mpirun exited $rc after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s ($(date +%T.%N | cut -c1-12))"
[ "$rc" = 124 ] && echo "netns: mpirun was stopped after NETNS_TIMEOUT=${NETNS_TIMEOUT:-600} s"

min="${NETNS_MIN_BYTES:-}"
short=0
for ((i = 1; i <= n; i++)); do
  read -r rx1 tx1 < <("$hosts" bytes "$NETNS_PREFIX" "$i")
  drx=$((rx1 - rx0[i])) dtx=$((tx1 - tx0[i]))
  echo "netns: host $i ($subnet.$i) eth0 moved: rx $drx bytes, tx $dtx bytes"
  if [ -n "$min" ] && { [ "$drx" -lt "$min" ] || [ "$dtx" -lt "$min" ]; }; then short=1; fi
done
if [ -n "$min" ]; then
  if [ "$short" = 1 ]; then
    echo "netns: FAILED: some host moved fewer than NETNS_MIN_BYTES=$min bytes over its veth"
    [ "$rc" = 0 ] && rc=1
  else
    echo "netns: every host sent and received at least $min bytes over its veth"
  fi
fi
exit "$rc"

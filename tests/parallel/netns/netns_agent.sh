#!/usr/bin/env bash
# netns_agent.sh: the "ssh" that mpirun uses to start its daemons on the namespace hosts.
#
#   mpirun --mca plm_rsh_agent /path/to/netns_agent.sh ...
#
# OpenMPI 4.1's rsh launcher runs   AGENT [agent options] HOST WORD...   where the WORDs are one
# shell command split on spaces and still carrying shell quoting (e.g.  orted -mca ess "env" ...),
# exactly what ssh would join with spaces and hand to the remote shell.  We do the same:
#
#   ip netns exec NS [unshare --uts] sh -c "WORD WORD ..."
#
# HOST is mapped to a namespace as
#   $NETNS_SUBNET.I (an address)  -> $NETNS_PREFIX-hI
#   PREFIX-hI       (a name)      -> itself, if that namespace exists
# NETNS_PREFIX / NETNS_SUBNET come from mpirun's environment (run_across_hosts.sh exports them).
# With NETNS_UTS=1 (run_across_hosts.sh's default) the command also gets its own UTS namespace with
# hostname NS, so each "host" has a distinct hostname as it would on a real cluster.
# NETNS_AGENT_LOG=FILE appends every call (host, namespace, command) to FILE.
set -u

# Skip ssh-style options before HOST (-x, -T, "-o Opt=val", "-p 22", ...).
while [ $# -gt 0 ]; do
  case "$1" in
    -o | -p | -l | -i | -F | -E | -J) shift 2 ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "netns_agent: usage: netns_agent.sh [ssh options] HOST COMMAND..." >&2
  exit 255
fi
host="$1"
shift

subnet="${NETNS_SUBNET:-10.213.0}"
subnet="${subnet%/24}"
if [[ "$subnet" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0$ ]]; then subnet="${BASH_REMATCH[1]}"; fi

ns=""
if [[ "$host" == "$subnet".* ]]; then
  idx="${host#"$subnet".}"
  if [[ "$idx" =~ ^[0-9]+$ ]] && [ -n "${NETNS_PREFIX:-}" ]; then
    ns="$NETNS_PREFIX-h$idx"
  elif [[ "$idx" =~ ^[0-9]+$ ]]; then
    # no prefix given: the one namespace whose eth0 holds that address
    for cand in $(ip netns list | awk '{print $1}'); do
      if ip -n "$cand" -4 -o addr show dev eth0 2>/dev/null | grep -q " $host/"; then
        [ -n "$ns" ] && { echo "netns_agent: $host is in both $ns and $cand; set NETNS_PREFIX" >&2; exit 255; }
        ns="$cand"
      fi
    done
  fi
elif [[ "$host" =~ -h[0-9]+$ ]]; then
  ns="$host"
fi
if [ -z "$ns" ] || ! ip netns list | awk '{print $1}' | grep -qxF "$ns"; then
  echo "netns_agent: no namespace for host '$host' (NETNS_PREFIX='${NETNS_PREFIX:-}', subnet $subnet)" >&2
  exit 255
fi

cmd="$*"
if [ -n "${NETNS_AGENT_LOG:-}" ]; then
  printf '%s host=%s ns=%s cmd=%s\n' "$(date +%T.%N)" "$host" "$ns" "$cmd" >>"$NETNS_AGENT_LOG"
fi
if [ "${NETNS_UTS:-0}" = 1 ] && command -v unshare >/dev/null 2>&1; then
  exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$1" && shift && exec sh -c "$*"' netns-agent "$ns" "$cmd"
fi
exec ip netns exec "$ns" sh -c "$cmd"

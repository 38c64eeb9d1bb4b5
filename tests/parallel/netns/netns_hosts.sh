#!/usr/bin/env bash
# netns_hosts.sh: emulate N hosts on one machine with Linux network namespaces.
#
#   netns_hosts.sh up N PREFIX        create hosts PREFIX-h1..PREFIX-hN (+ switch namespace PREFIX-sw)
#   netns_hosts.sh down PREFIX        remove everything PREFIX made (idempotent, never fails)
#   netns_hosts.sh link-down PREFIX I pull host I's cable (its switch port goes down; eth0 loses carrier)
#   netns_hosts.sh link-up PREFIX I   plug it back in
#   netns_hosts.sh addr I             print host I's address
#   netns_hosts.sh bytes PREFIX I     print "RX_BYTES TX_BYTES" of host I's eth0
#   netns_hosts.sh reach PREFIX I J   exit 0 if host I reaches host J over TCP (a RST counts)
#   netns_hosts.sh check              exit 0 if namespaces can be made here, else print why, exit 77
#
# Layout: one namespace PREFIX-sw holds a bridge br0; host i is namespace PREFIX-hi with lo up and
# eth0 = $NETNS_SUBNET.i/24, one end of a veth pair whose other end (port "hi") is a port of br0.
# Nothing is created in the root namespace, so deleting the namespaces removes every veth and the
# bridge with them.  NETNS_SUBNET is the first three octets (default 10.213.0; "10.213.0.0/24" is
# accepted too).
set -u

subnet() {
  local s="${NETNS_SUBNET:-10.213.0}"
  s="${s%/24}"
  if [[ "$s" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0$ ]]; then s="${BASH_REMATCH[1]}"; fi
  if ! [[ "$s" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "netns_hosts: NETNS_SUBNET must look like 10.213.0 or 10.213.0.0/24, not '$NETNS_SUBNET'" >&2
    exit 2
  fi
  echo "$s"
}

die() {
  echo "netns_hosts: $*" >&2
  exit 1
}

check_prefix() {
  [[ "$1" =~ ^[A-Za-z0-9_.-]{1,20}$ ]] || die "bad prefix '$1' (1..20 of [A-Za-z0-9_.-])"
}

# Can this process make network namespaces?  Prints the reason and returns 77 if not.
cmd_check() {
  if ! command -v ip >/dev/null 2>&1; then
    echo "netns: not permitted here: no 'ip' command (iproute2)"
    return 77
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "netns: not permitted here: not root (uid $(id -u))"
    return 77
  fi
  local probe="moe-netns-probe-$$" err
  if ! err=$(ip netns add "$probe" 2>&1); then
    echo "netns: not permitted here: ip netns add failed: ${err//$'\n'/ }"
    return 77
  fi
  if ! err=$(ip -n "$probe" link add probe0 type veth peer name probe1 2>&1); then
    ip netns del "$probe" 2>/dev/null
    echo "netns: not permitted here: cannot create veth pairs: ${err//$'\n'/ }"
    return 77
  fi
  if ! err=$(ip -n "$probe" link add probebr type bridge 2>&1); then
    ip netns del "$probe" 2>/dev/null
    echo "netns: not permitted here: cannot create bridges: ${err//$'\n'/ }"
    return 77
  fi
  ip netns del "$probe" 2>/dev/null
  return 0
}

cmd_down() {
  local prefix="$1" ns
  check_prefix "$prefix"
  # every namespace PREFIX-sw / PREFIX-h<digits>.  Processes still inside one (a stray orted or
  # rank) would keep it alive after "ip netns del", so they are stopped first: TERM, then KILL after
  # at most 3 s.  Deleting a namespace deletes its veth ends (and so their peers) and the bridge.
  local mine=() pids sig t
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    if [[ "$ns" == "$prefix-sw" || "$ns" =~ ^"$prefix"-h[0-9]+$ ]]; then mine+=("$ns"); fi
  done
  for sig in TERM KILL; do
    for ((t = 0; t < 30; t++)); do
      pids=""
      for ns in "${mine[@]}"; do pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
      [ -z "${pids// /}" ] && break 2
      [ "$t" = 0 ] && echo "netns_hosts: sending SIG$sig to processes left in the namespaces:$pids" >&2
      [ "$t" = 0 ] && kill -s "$sig" $pids 2>/dev/null
      sleep 0.1
    done
  done
  for ns in "${mine[@]}"; do
    ip netns del "$ns" 2>/dev/null && echo "netns_hosts: removed namespace $ns"
  done
  return 0
}

cmd_up() {
  local n="$1" prefix="$2" s i ns
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 250 ] || die "N must be 1..250, not '$n'"
  check_prefix "$prefix"
  s=$(subnet) || exit 2
  cmd_check >&2 || exit 77
  if ip netns list | awk '{print $1}' | grep -qx -e "$prefix-sw" -e "$prefix-h1"; then
    die "namespaces for prefix '$prefix' already exist (run: $0 down $prefix)"
  fi
  # on any failure half-way, take down what was made
  trap 'cmd_down "$prefix" >/dev/null; trap - EXIT' EXIT
  set -e
  ip netns add "$prefix-sw"
  ip -n "$prefix-sw" link set lo up
  ip -n "$prefix-sw" link add br0 type bridge
  # no STP and no forwarding delay: ports forward the moment they are up
  ip -n "$prefix-sw" link set br0 type bridge stp_state 0 forward_delay 0 2>/dev/null || true
  ip -n "$prefix-sw" link set br0 up
  for ((i = 1; i <= n; i++)); do
    ns="$prefix-h$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$prefix-sw" link add "h$i" type veth peer name eth0 netns "$ns"
    ip -n "$prefix-sw" link set "h$i" master br0
    ip -n "$prefix-sw" link set "h$i" up
    ip -n "$ns" addr add "$s.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "netns_hosts: host $i: namespace $ns, eth0 $s.$i/24 (veth peer h$i on bridge br0 in $prefix-sw)"
  done
  set +e
  trap - EXIT
  # wait (bounded) until every host can reach host 1 (ARP through the bridge works)
  local deadline=$((SECONDS + 10)) ok
  while :; do
    ok=1
    for ((i = 2; i <= n; i++)); do
      reach "$prefix-h$i" "$s.1" || { ok=0; break; }
    done
    [ "$ok" = 1 ] && break
    if [ $SECONDS -ge $deadline ]; then
      echo "netns_hosts: warning: host $i cannot reach $s.1 after 10 s" >&2
      break
    fi
    sleep 0.2
  done
  echo "netns_hosts: up: $n hosts $prefix-h1..$prefix-h$n on $s.0/24"
}

# Can namespace $1 reach address $2?  A TCP connect to the discard port: "connection refused" (a RST
# came back) means the path works; no ping needed.
reach() {
  local out
  out=$(ip netns exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) && return 0
  [[ "$out" == *refused* ]]
}

cmd_link() {
  local updown="$1" prefix="$2" i="$3"
  check_prefix "$prefix"
  [[ "$i" =~ ^[0-9]+$ ]] || die "bad host index '$i'"
  ip -n "$prefix-sw" link set "h$i" "$updown" || die "cannot set host $i's link $updown"
  echo "netns_hosts: host $i ($prefix-h$i): link $updown"
}

cmd_bytes() {
  local prefix="$1" i="$2"
  local d=/sys/class/net/eth0/statistics
  ip netns exec "$prefix-h$i" sh -c "echo \$(cat $d/rx_bytes) \$(cat $d/tx_bytes)"
}

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  up) [ $# -eq 3 ] || usage; cmd_up "$2" "$3" ;;
  down) [ $# -eq 2 ] || usage; cmd_down "$2" ;;
  link-down) [ $# -eq 3 ] || usage; cmd_link down "$2" "$3" ;;
  link-up) [ $# -eq 3 ] || usage; cmd_link up "$2" "$3" ;;
  addr) [ $# -eq 2 ] || usage; echo "$(subnet).$2" ;;
  bytes) [ $# -eq 3 ] || usage; cmd_bytes "$2" "$3" ;;
  reach) [ $# -eq 4 ] || usage; check_prefix "$2"; reach "$2-h$3" "$(subnet).$4" ;;
  check) cmd_check ;;
  *) usage ;;
esac

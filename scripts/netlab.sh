#!/usr/bin/env bash
# A network-namespace lab that stands in for several machines: a Selenium Grid hub, N Grid nodes
# (each with its own browsers and Prometheus node_exporter) and an orchestrator where stressctl
# runs, each in its own network namespace, joined by veth pairs to a bridge that lives in a
# namespace of its own. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2, and what
# scripts/setup.sh and scripts/setup-grid.sh install; nothing is downloaded here.
#
#   scripts/netlab.sh up --nodes N [--browsers chromium,firefox] [--slots K]
#   scripts/netlab.sh status            # namespaces, addresses, links, processes, the hub's nodes
#   scripts/netlab.sh exec -- CMD…      # runs CMD in the orchestrator's namespace
#   scripts/netlab.sh add               # one more node, while the lab runs
#   scripts/netlab.sh partition NODE    # cuts NODE's link to the bridge (node-2 or 2)
#   scripts/netlab.sh heal NODE         # restores it
#   scripts/netlab.sh latency NODE 100ms   # every round trip with NODE takes 100 ms longer (netem);
#                                          # `latency NODE off` removes it
#   scripts/netlab.sh down              # removes exactly what up and add made; idempotent
#
# Addresses (a private /24, STRESSCTL_LAB_NET, default 10.213.7.0/24): the hub .2 (WebDriver 4444,
# event bus 4442/4443), the orchestrator .3, node i .(10+i) (Grid node 5555, node_exporter 9100).
# Every address lives inside a namespace of the lab; nothing is added to the root namespace (the
# veth pairs are created inside the bridge's namespace, their other ends moved straight into the
# member's). Each namespace has its own loopback, up: 127.0.0.1 on a node is that node.
#
# Namespaces are named STRESSCTL_LAB_PREFIX (default sclab-) + net (the bridge), hub, orch, node-i.
# The state directory (STRESSCTL_LAB_DIR, default /run/stressctl-lab) holds the state file, each
# node's Grid TOML and every process's log. The state file records every namespace (with its nsfs
# inode), every veth pair and every process (pid, start time from /proc/PID/stat field 22, and
# the inode of the namespace it runs in). `down` signals only members of the recorded process
# groups that started no earlier than their leader and run in the recorded namespace (so a reused
# pid is never hit, and nothing outside the lab is), never by name; deletes only the namespaces
# whose name and inode it recorded; and reports, without signalling them, processes it did not
# start that still run in a lab namespace (e.g. a stressctl from `exec`).
# GRID_JAVA_OPTS replaces the JVMs' options, as in scripts/grid.sh. STRESSCTL_LAB_TIMEOUT (s,
# default 120) bounds how long up and add wait for the nodes to register.
#
# Exit status: 0 done; 1 failed (one line says why); 2 bad usage; 3 not permitted here (no
# CAP_NET_ADMIN/CAP_SYS_ADMIN or no `ip`): nothing was done.
set -euo pipefail

caller_dir=$(pwd)
state_dir=${STRESSCTL_LAB_DIR:-/run/stressctl-lab}
case $state_dir in /*) ;; *) state_dir="$caller_dir/$state_dir" ;; esac
cd "$(dirname "$0")/.."
repo=$(pwd)
. "$repo/scripts/grid-node.sh"
state="$state_dir/state"
net_spec=${STRESSCTL_LAB_NET:-10.213.7.0/24}
prefix=${STRESSCTL_LAB_PREFIX:-sclab-}
timeout=${STRESSCTL_LAB_TIMEOUT:-120}

# Fixed ports: every member has its own namespace, so no two of them can clash.
HUB_PORT=4444
NODE_PORT=5555
EXPORTER_PORT=9100

die() { echo "netlab: $1" >&2; exit "${2:-1}"; }

usage="usage: scripts/netlab.sh up --nodes N [--browsers chromium,firefox] [--slots K] | down | status | exec -- CMD… | add | partition NODE | heal NODE | latency NODE DELAY|off"

# Root's powers this needs: network namespaces, links and qdiscs (CAP_NET_ADMIN) and the bind
# mounts `ip netns` keeps them under (CAP_SYS_ADMIN).
need_admin() {
  command -v ip >/dev/null 2>&1 || die "needs iproute2's ip (apt-get install iproute2); nothing done" 3
  local cap
  cap=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  if (( ((16#$cap >> 12) & 1) == 0 || ((16#$cap >> 21) & 1) == 0 )); then
    die "needs CAP_NET_ADMIN and CAP_SYS_ADMIN to make network namespaces (run it as root); nothing done" 3
  fi
}

# Holds the state directory's lock for the rest of this command: one change to a lab at a time.
lock() {
  mkdir -p "$state_dir"
  exec 9>"$state_dir/lock"
  flock -w 60 9 || die "another netlab.sh command holds $state_dir/lock"
}

# The first value of key $1 in the state file.
st_get() { awk -v k="$1" '$1 == k {print $2; exit}' "$state" 2>/dev/null; }

# The nsfs inode of namespace $1 (empty if there is none by that name).
ns_inode() { stat -L -c %i "/run/netns/$1" 2>/dev/null || true; }

# Start time of pid $1 in clock ticks since boot (empty if it is gone).
start_time() {
  local line rest f
  IFS= read -r line 2>/dev/null <"/proc/$1/stat" || return 0
  rest=${line##*) }
  read -r -a f <<<"$rest"
  echo "${f[19]}"
}

# Live members of process group $1 that started at or after tick $2 and run in the network
# namespace of inode $3: the recorded process and what it started (drivers, browsers).
group_members() {
  local pgid=$1 since=$2 inode=$3 d line rest f
  for d in /proc/[0-9]*; do
    IFS= read -r line 2>/dev/null <"$d/stat" || continue
    rest=${line##*) }
    read -r -a f <<<"$rest"
    [ "${f[2]}" = "$pgid" ] && [ "${f[0]}" != Z ] && [ "${f[19]}" -ge "$since" ] || continue
    [ "$(readlink "$d/ns/net" 2>/dev/null)" = "net:[$inode]" ] || continue
    echo "${d#/proc/}"
  done
}

# Parses STRESSCTL_LAB_NET into its first three octets; only private /24s.
parse_net() {
  [[ $net_spec =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.0/24$ ]] \
    || die "STRESSCTL_LAB_NET must be a /24 written A.B.C.0/24, got $net_spec" 2
  local a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]} c=${BASH_REMATCH[3]}
  (( a <= 255 && b <= 255 && c <= 255 )) || die "STRESSCTL_LAB_NET $net_spec is not an address" 2
  (( a == 10 || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168) )) \
    || die "STRESSCTL_LAB_NET must be a private range (10/8, 172.16/12, 192.168/16), got $net_spec" 2
  echo "$a.$b.$c"
}

# Names and addresses, from the recorded lab.
load() {
  [ -f "$state" ] || die "no lab recorded in $state_dir (start one with scripts/netlab.sh up --nodes N)"
  prefix=$(st_get prefix)
  base=$(st_get net)
  br_ns="${prefix}net"
  hub_ns="${prefix}hub"
  orch_ns="${prefix}orch"
  hub_ip="$base.2"
}

node_ip() { echo "$base.$((10 + $1))"; }

# The recorded node numbers, in order.
node_numbers() { awk -v p="${prefix}node-" 'index($2, p) == 1 && $1 == "netns" {print substr($2, length(p) + 1)}' "$state" | sort -n; }

# Node argument $1 (node-2 or 2) as its number, if that node is recorded.
node_arg() {
  local n=${1:-}
  [ -n "$n" ] || die "name a node (node-2 or 2)" 2
  n=${n#node-}
  [[ $n =~ ^[0-9]+$ ]] && node_numbers | grep -qx "$n" || die "no node $1 in this lab (see scripts/netlab.sh status)" 2
  echo "$n"
}

# Makes namespace $1 (address $2, or - for none), records it, and brings its loopback up.
make_ns() {
  local name=$1 addr=$2
  [ ! -e "/run/netns/$name" ] || die "a namespace named $name exists already and is not this lab's; choose another STRESSCTL_LAB_PREFIX"
  ip netns add "$name"
  echo "netns $name $(ns_inode "$name") $addr" >>"$state"
  ip -n "$name" link set lo up
}

# Joins namespace $1 to the bridge with address $2: a veth pair made inside the bridge's
# namespace, named $3 there and eth0 in $1.
join_bridge() {
  local ns=$1 addr=$2 ifname=$3
  ip -n "$br_ns" link add "$ifname" type veth peer name eth0 netns "$ns"
  echo "link $br_ns $ifname $ns eth0" >>"$state"
  ip -n "$br_ns" link set "$ifname" master br0 up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
}

# Starts `$@` in namespace $2 as its own process group, logging to $state_dir/$1.log; records
# its pid, start time and namespace.
spawn() {
  local name=$1 ns=$2; shift 2
  local log="$state_dir/$name.log"
  # Inherited descriptors are closed first, the state lock among them: the lab's processes must
  # not hold it for as long as they run.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null
  ) &
  local pid=$! st=""
  for _ in $(seq 1 50); do st=$(start_time "$pid"); [ -n "$st" ] && break; sleep 0.02; done
  [ -n "$st" ] || die "$name exited at once; see $log"
  echo "proc $name $pid $st $(ns_inode "$ns")" >>"$state"
}

# curl from the orchestrator's namespace.
orch_curl() { ip netns exec "$orch_ns" curl -fsS --max-time "${CURL_TIME:-5}" "$@"; }

hub_status() { orch_curl "http://$hub_ip:$HUB_PORT/status"; }

# The TOML of node $1 with $2 slots per browser for the browsers in $3, on its lab address
# (scripts/grid-node.sh writes it, as for scripts/grid.sh's nodes).
node_toml() {
  grid_node_toml "$1" "$2" "$3" "$(node_ip "$1")" "$NODE_PORT" "$hub_ip" "$HUB_PORT"
}

firefox_path() { grid_firefox_path; }
geckodriver_path() { grid_geckodriver_path; }

java_cmd() {
  local jar java_opts
  jar=$(ls "$repo"/vendor/selenium/selenium-server-*.jar 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$jar" ] || die "no Selenium server jar in vendor/selenium (run scripts/setup-grid.sh as root)"
  # The same JVM options as scripts/grid.sh (see there why).
  read -r -a java_opts <<<"${GRID_JAVA_OPTS:--Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
  java_argv=(java "${java_opts[@]}" -jar "$jar")
}

# Makes node $1: namespace, link, Grid node and node_exporter.
start_node() {
  local i=$1 ns="${prefix}node-$1" ip
  ip=$(node_ip "$i")
  make_ns "$ns" "$ip"
  join_bridge "$ns" "$ip" "n$i"
  node_toml "$i" "$(st_get slots)" "$(st_get browsers)" >"$state_dir/node-$i.toml"
  spawn "node-$i" "$ns" "${java_argv[@]}" node --config "$state_dir/node-$i.toml"
  spawn "exporter-$i" "$ns" prometheus-node-exporter --web.listen-address="$ip:$EXPORTER_PORT"
}

# Fails (after saying which and where its log is) when one of the recorded processes named in
# $@ has exited. Only those: a node or exporter that died (or was killed to try what the
# orchestrator does about it) does not stop another node from being added.
check_alive() {
  local kind name pid st inode want
  while read -r kind name pid st inode; do
    [ "$kind" = proc ] || continue
    for want in "$@"; do
      [ "$name" = "$want" ] || continue
      [ "$(start_time "$pid")" = "$st" ] || die "$name exited; its log: $state_dir/$name.log"
    done
  done <"$state"
}

# Whether node $1 is registered and UP on the hub and its node_exporter answers.
node_ready() {
  local i=$1 ip j
  ip=$(node_ip "$i")
  j=$(CURL_TIME=3 hub_status 2>/dev/null) || return 1
  echo "$j" | jq -e --arg u "http://$ip:$NODE_PORT" '[.value.nodes[] | select(.uri == $u and .availability == "UP")] | length == 1' >/dev/null || return 1
  CURL_TIME=3 orch_curl -o /dev/null "http://$ip:$EXPORTER_PORT/metrics" 2>/dev/null
}

# Waits until every node numbered in $@ is ready (at most $timeout s).
wait_nodes() {
  local t0=$SECONDS i pending
  while :; do
    pending=()
    for i in "$@"; do node_ready "$i" || pending+=("node-$i"); done
    [ ${#pending[@]} -gt 0 ] || return 0
    local names=(hub)
    for i in "$@"; do names+=("node-$i" "exporter-$i"); done
    check_alive "${names[@]}"
    [ $((SECONDS - t0)) -lt "$timeout" ] || die "${pending[*]} not registered with the hub (or node_exporter silent) after $timeout s; logs in $state_dir"
    sleep 0.5
  done
}

cmd_up() {
  local nodes="" browsers=chromium slots=2
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=${2:?}; shift 2 ;;
      --browsers) browsers=${2:?}; shift 2 ;;
      --slots) slots=${2:?}; shift 2 ;;
      *) die "unknown option $1 ($usage)" 2 ;;
    esac
  done
  [[ $nodes =~ ^[1-9][0-9]?$ ]] || die "--nodes must be 1..99, got '${nodes}'" 2
  [[ $slots =~ ^[1-9][0-9]?$ ]] || die "--slots must be 1..99, got $slots" 2
  [[ $prefix =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "STRESSCTL_LAB_PREFIX must be 1-31 of a-z 0-9 -, got $prefix" 2
  [[ $timeout =~ ^[1-9][0-9]*$ ]] || die "STRESSCTL_LAB_TIMEOUT must be whole seconds, got $timeout" 2
  base=$(parse_net)
  need_admin
  local want=() b
  for b in ${browsers//,/ }; do
    case $b in
      chromium)
        command -v chromium >/dev/null && command -v chromedriver >/dev/null || die "chromium or chromedriver missing (scripts/setup.sh)"
        want+=(chromium) ;;
      firefox)
        [ -n "$(firefox_path)" ] && [ -n "$(geckodriver_path)" ] || die "firefox-esr or geckodriver missing (scripts/setup.sh)"
        want+=(firefox) ;;
      *) die "unknown browser $b (chromium, firefox)" 2 ;;
    esac
  done
  [ ${#want[@]} -gt 0 ] || die "no browser to offer" 2
  browsers=$(IFS=,; echo "${want[*]}")
  command -v java >/dev/null 2>&1 || die "java not found (run scripts/setup-grid.sh as root)"
  command -v prometheus-node-exporter >/dev/null 2>&1 || die "prometheus-node-exporter not found (run scripts/setup.sh as root)"
  command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 || die "needs curl and jq"
  java_cmd
  lock
  [ ! -f "$state" ] || die "a lab is recorded in $state_dir already (scripts/netlab.sh status; down first)"
  local taken
  taken=$(ip netns list | awk -v p="$prefix" 'index($1, p) == 1 {print $1}' | tr '\n' ' ')
  [ -z "$taken" ] || die "namespaces named $prefix* exist already and are not recorded here: $taken(choose another STRESSCTL_LAB_PREFIX)"

  # From here on, a failure takes down whatever was made.
  up_done=0
  trap '[ "$up_done" = 1 ] || { echo "netlab: up failed; removing what it made" >&2; cmd_down >&2; }' EXIT
  rm -f "$state_dir"/*.log "$state_dir"/node-*.toml
  printf 'prefix %s\nnet %s\nbrowsers %s\nslots %s\n' "$prefix" "$base" "$browsers" "$slots" >"$state"
  br_ns="${prefix}net" hub_ns="${prefix}hub" orch_ns="${prefix}orch" hub_ip="$base.2"
  local t0=$SECONDS
  make_ns "$br_ns" -
  ip -n "$br_ns" link add br0 type bridge
  ip -n "$br_ns" link set br0 up
  make_ns "$hub_ns" "$hub_ip"
  join_bridge "$hub_ns" "$hub_ip" hub
  make_ns "$orch_ns" "$base.3"
  join_bridge "$orch_ns" "$base.3" orch
  spawn hub "$hub_ns" "${java_argv[@]}" hub --host "$hub_ip" --port "$HUB_PORT" \
    --publish-events "tcp://$hub_ip:$((HUB_PORT - 2))" --subscribe-events "tcp://$hub_ip:$((HUB_PORT - 1))" \
    --bind-host false --healthcheck-interval 2 --reject-unsupported-caps true --session-request-timeout 60
  local i
  for i in $(seq 1 "$nodes"); do start_node "$i"; done
  # shellcheck disable=SC2046
  wait_nodes $(seq 1 "$nodes")
  up_done=1
  echo "netlab: up in $((SECONDS - t0)) s: hub http://$hub_ip:$HUB_PORT, orchestrator $base.3, $nodes node(s) ($(for i in $(seq 1 "$nodes"); do printf 'node-%s %s ' "$i" "$(node_ip "$i")"; done)) with $slots $browsers slot(s) each; node_exporter on :$EXPORTER_PORT of each node"
}

cmd_add() {
  need_admin
  lock
  load
  command -v jq >/dev/null 2>&1 || die "needs jq"
  java_cmd
  local i
  i=$(( $(node_numbers | tail -1) + 1 ))
  [ "$i" -le 99 ] || die "a lab has at most 99 nodes"
  local t0=$SECONDS
  start_node "$i"
  wait_nodes "$i"
  echo "netlab: node-$i up at $(node_ip "$i") (registered in $((SECONDS - t0)) s)"
}

cmd_partition() {
  need_admin
  lock
  load
  local i; i=$(node_arg "${1:-}")
  ip -n "$br_ns" link set "n$i" down
  echo "netlab: node-$i ($(node_ip "$i")) partitioned: its link to the bridge is down (scripts/netlab.sh heal node-$i)"
}

cmd_heal() {
  need_admin
  lock
  load
  local i; i=$(node_arg "${1:-}")
  ip -n "$br_ns" link set "n$i" up
  echo "netlab: node-$i ($(node_ip "$i")) healed: its link to the bridge is up"
}

cmd_latency() {
  need_admin
  lock
  load
  local i delay=${2:-} err
  i=$(node_arg "${1:-}")
  local ns="${prefix}node-$i"
  case $delay in
    off | 0)
      tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
      echo "netlab: node-$i: no added latency"
      return 0 ;;
  esac
  [[ $delay =~ ^[0-9]+(\.[0-9]+)?(us|ms|s)$ ]] || die "latency wants a delay like 100ms, 0.5s or off, got '$delay'" 2
  # The node's outgoing packets wait $delay: every round trip with the node (the hub's proxied
  # WebDriver commands, scrapes of its node_exporter) takes that much longer.
  if ! err=$(tc -n "$ns" qdisc replace dev eth0 root netem delay "$delay" 2>&1); then
    case $err in
      *"qdisc kind is unknown"*) die "latency needs the kernel's netem qdisc (sch_netem), which this kernel lacks (tc: ${err%%$'\n'*}); no latency added" ;;
      *) die "tc could not add netem delay $delay on node-$i: ${err%%$'\n'*}" ;;
    esac
  fi
  echo "netlab: node-$i: every round trip with it takes $delay longer (netem on its eth0)"
}

cmd_exec() {
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "exec needs a command: scripts/netlab.sh exec -- CMD…" 2
  need_admin
  load
  [ -n "$(ns_inode "$orch_ns")" ] || die "the orchestrator namespace $orch_ns is gone (scripts/netlab.sh down, then up)"
  cd "$caller_dir"
  exec ip netns exec "$orch_ns" "$@"
}

cmd_status() {
  need_admin
  load
  echo "lab $prefix on $base.0/24 (state $state_dir)"
  local kind name inode addr ifname have link qd
  echo "namespaces:"
  while read -r kind name inode addr; do
    [ "$kind" = netns ] || continue
    have=$(ns_inode "$name")
    if [ -z "$have" ]; then echo "  $name gone"; continue; fi
    [ "$have" = "$inode" ] || { echo "  $name is another namespace now (inode $have, recorded $inode)"; continue; }
    if [ "$addr" = - ]; then echo "  $name bridge br0 $(ip -n "$name" -br link show br0 2>/dev/null | awk '{print $2}')"; continue; fi
    ifname=${name#"$prefix"}; ifname=${ifname/node-/n}
    link=$(ip -n "$br_ns" -br link show "$ifname" 2>/dev/null | awk '{print $2}')
    [ "$link" = DOWN ] && link="DOWN (partitioned)"
    qd=$(tc -n "$name" qdisc show dev eth0 2>/dev/null | awk '$2 == "netem" { for (i = 3; i < NF; i++) if ($i == "delay") print "latency +" $(i + 1) " (netem)" }')
    echo "  $name $addr link ${link:-missing}${qd:+, $qd}"
  done <"$state"
  echo "processes:"
  local pid st
  while read -r kind name pid st inode; do
    [ "$kind" = proc ] || continue
    if [ "$(start_time "$pid")" = "$st" ]; then echo "  $name pid $pid running"; else echo "  $name pid $pid gone"; fi
  done <"$state"
  local j
  if ! j=$(hub_status 2>/dev/null); then
    echo "hub: http://$hub_ip:$HUB_PORT does not answer /status from $orch_ns"
    return 0
  fi
  echo "hub: http://$hub_ip:$HUB_PORT reachable from $orch_ns"
  echo "$j" | jq -r '.value | "  ready: \(.ready) (\(.message))", (.nodes[] | "  \(.slots[0].stereotype["stressctl:node"] // .id) \(.uri) \(.availability) slots \(.slots | length) busy \([.slots[] | select(.session != null)] | length) browsers \([.slots[].stereotype.browserName] | unique | join(","))")'
}

cmd_down() {
  need_admin
  [ -f "$state" ] || { echo "netlab: nothing recorded in $state_dir: nothing to do"; return 0; }
  lock
  load
  local kind name pid st inode members left pass stopped=0
  # Every recorded process group (nodes and exporters first, the hub last): TERM, then KILL
  # what is left after 10 s.
  for pass in TERM KILL; do
    left=0
    while read -r kind name pid st inode; do
      [ "$kind" = proc ] || continue
      members=$(group_members "$pid" "$st" "$inode")
      [ -n "$members" ] || continue
      left=1
      [ "$pass" = KILL ] || stopped=$((stopped + 1))
      # shellcheck disable=SC2086
      kill -s "$pass" $members 2>/dev/null || true
    done < <(tac "$state")
    [ "$left" = 1 ] || break
    [ "$pass" = TERM ] || break
    for _ in $(seq 1 50); do
      left=0
      while read -r kind name pid st inode; do
        [ "$kind" = proc ] || continue
        [ -z "$(group_members "$pid" "$st" "$inode")" ] || { left=1; break; }
      done <"$state"
      [ "$left" = 1 ] || break
      sleep 0.2
    done
    [ "$left" = 1 ] || break
  done
  # Links (deleting one end deletes the pair), then the namespaces.
  local br removed=0 have p
  while read -r kind br name _; do
    [ "$kind" = link ] || continue
    ip -n "$br" link del "$name" 2>/dev/null || true
  done <"$state"
  while read -r kind name inode _; do
    [ "$kind" = netns ] || continue
    have=$(ns_inode "$name")
    [ -n "$have" ] || continue
    if [ "$have" != "$inode" ]; then
      echo "netlab: $name is not the namespace this lab made (inode $have, recorded $inode): left alone" >&2
      continue
    fi
    for p in $(ip netns pids "$name" 2>/dev/null); do
      echo "netlab: pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80)) still runs in $name; the lab did not start it, so it is not signalled: the namespace goes when it exits" >&2
    done
    ip netns del "$name"
    removed=$((removed + 1))
  done < <(tac "$state")
  rm -f "$state" "$state_dir"/node-*.toml
  echo "netlab: down: stopped $stopped process group(s), removed $removed namespace(s) (logs stay in $state_dir)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec) cmd_exec "$@" ;;
  add) cmd_add ;;
  partition) cmd_partition "$@" ;;
  heal) cmd_heal "$@" ;;
  latency) cmd_latency "$@" ;;
  *) die "$usage" 2 ;;
esac

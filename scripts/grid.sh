#!/usr/bin/env bash
# A local Selenium Grid 4 for development and tests: one hub and N nodes on 127.0.0.1, driving the
# system Chromium/ChromeDriver and, where installed, Firefox/geckodriver.
#
#   scripts/grid.sh up [--nodes N] [--browsers chromium,firefox] [--slots K] [--hub-port P]
#   scripts/grid.sh add             # one more node (the next number, as `up` made them), e.g. mid-campaign
#   scripts/grid.sh status          # what /status says: nodes, availability, slots, sessions
#   scripts/grid.sh down            # stops exactly what `up` started (and what those started)
#
# Needs scripts/setup-grid.sh to have run (Java 17, vendor/selenium/selenium-server-*.jar);
# nothing is downloaded here. Every process started is its own process group (setsid); the state
# file records its pid and start time (/proc/<pid>/stat field 22), and `down` signals only the
# members of those groups that started no earlier than their leader (so a reused pid or group id
# is never hit), never by name. Each node's stereotypes carry `"stressctl:node": "node-<i>"`, so a
# session can be placed on one node on purpose. The event bus uses ports P-2 and P-1 (4442/4443
# for the default hub port 4444); node i listens on P+10+i (4455, 4456, … by default).
# GRID_JAVA_OPTS replaces the JVMs' options (default "-Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/grid-node.sh

state_dir=${STRESSCTL_GRID_DIR:-.stressctl/grid}
state="$state_dir/state"
jar=$(ls vendor/selenium/selenium-server-*.jar 2>/dev/null | sort -V | tail -1 || true)

die() { echo "grid: $*" >&2; exit "${2:-1}"; }

# Start time of pid $1 in clock ticks since boot (empty if it is gone).
start_time() { [ -r "/proc/$1/stat" ] && sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20 || true; }

# Members of process group $1 that started at or after tick $2 (the group's leader was recorded then).
group_members() {
  local pgid=$1 since=$2 f fields pid
  for f in /proc/[0-9]*/stat; do
    fields=$(sed -E 's/^.*\) //' "$f" 2>/dev/null) || continue
    [ -n "$fields" ] || continue
    # after the comm field: state ppid pgrp ... starttime is field 20 of what is left
    set -- $fields
    [ "$3" = "$pgid" ] || continue
    [ "${20}" -ge "$since" ] || continue
    pid=${f#/proc/}; pid=${pid%/stat}
    echo "$pid"
  done
}

hub_url() { echo "http://127.0.0.1:${1}"; }

status_json() { curl -fsS --max-time 5 "$(hub_url "$1")/status"; }

cmd_status() {
  [ -f "$state" ] || die "no grid recorded in $state (start one with scripts/grid.sh up)"
  local port; port=$(awk '$1=="hub_port"{print $2}' "$state")
  local j; j=$(status_json "$port") || die "hub on port $port does not answer /status"
  echo "$j" | jq -r '.value | "ready: \(.ready) (\(.message))", (.nodes[] | "node \(.stereotypes // "" | tostring | .[0:0])\(.slots[0].stereotype["stressctl:node"] // .id) \(.uri) \(.availability) slots \(.slots | length) busy \([.slots[] | select(.session != null)] | length) browsers \([.slots[].stereotype.browserName] | unique | join(","))")'
  echo "processes:"
  while read -r kind name pid st; do
    [ "$kind" = proc ] || continue
    if [ "$(start_time "$pid")" = "$st" ]; then echo "  $name pid $pid running"; else echo "  $name pid $pid gone"; fi
  done < "$state"
}

cmd_down() {
  [ -f "$state" ] || { echo "grid: nothing recorded in $state: nothing to stop"; return 0; }
  local kind name pid st members left
  # nodes first (their drivers and browsers are in their groups), the hub last
  for pass in TERM KILL; do
    left=0
    while read -r kind name pid st; do
      [ "$kind" = proc ] || continue
      members=$(group_members "$pid" "$st")
      [ -n "$members" ] || continue
      left=1
      # shellcheck disable=SC2086
      kill -s "$pass" $members 2>/dev/null || true
    done < <(tac "$state")
    [ "$left" = 1 ] || break
    if [ "$pass" = TERM ]; then
      for _ in $(seq 1 50); do
        left=0
        while read -r kind name pid st; do
          [ "$kind" = proc ] || continue
          [ -z "$(group_members "$pid" "$st")" ] || left=1
        done < "$state"
        [ "$left" = 1 ] || break
        sleep 0.2
      done
      [ "$left" = 1 ] || break
    fi
  done
  sleep 0.2
  rm -f "$state"
  echo "grid: stopped"
}

# The TOML of node $1 (1-based) with $2 slots per browser for the browsers in $3, its hub on
# 127.0.0.1:$4 (scripts/grid-node.sh writes it, as for the lab's nodes).
node_toml() {
  grid_node_toml "$1" "$2" "$3" 127.0.0.1 $(($4 + 10 + $1)) 127.0.0.1 "$4"
}

# Starts `$@` as its own process group, logging to $log; records it in the state file.
spawn() {
  local name=$1; shift
  local log="$state_dir/$name.log"
  # Inherited descriptors are closed first: a lock held by the caller (e.g. `flock FILE grid.sh up`)
  # must not be held on by the Grid's processes for as long as they run.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$@" >"$log" 2>&1 < /dev/null
  ) &
  local pid=$!
  local st=""
  for _ in $(seq 1 50); do st=$(start_time "$pid"); [ -n "$st" ] && break; sleep 0.02; done
  [ -n "$st" ] || die "$name exited at once; see $log"
  echo "proc $name $pid $st" >> "$state"
}

cmd_up() {
  local nodes=1 browsers=chromium slots=2 hub_port=4444
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=${2:?}; shift 2 ;;
      --browsers) browsers=${2:?}; shift 2 ;;
      --slots) slots=${2:?}; shift 2 ;;
      --hub-port) hub_port=${2:?}; shift 2 ;;
      *) die "unknown option $1 (up [--nodes N] [--browsers chromium,firefox] [--slots K] [--hub-port P])" 2 ;;
    esac
  done
  [[ $nodes =~ ^[1-9][0-9]?$ ]] || die "--nodes must be 1..99, got $nodes" 2
  [[ $slots =~ ^[1-9][0-9]?$ ]] || die "--slots must be 1..99, got $slots" 2
  [[ $hub_port =~ ^[0-9]+$ ]] && [ "$hub_port" -gt 1024 ] && [ "$hub_port" -lt 65000 ] || die "--hub-port must be 1025..64999" 2
  [ -n "$jar" ] || die "no Selenium server jar in vendor/selenium (run scripts/setup-grid.sh as root)"
  command -v java >/dev/null 2>&1 || die "java not found (run scripts/setup-grid.sh as root)"
  if [ -f "$state" ]; then
    local alive=0 kind name pid st
    while read -r kind name pid st; do
      [ "$kind" = proc ] && [ "$(start_time "$pid")" = "$st" ] && alive=1
    done < "$state"
    [ "$alive" = 0 ] || die "a grid is already up (see $state; scripts/grid.sh down first)"
    rm -f "$state"
  fi
  firefox=$(command -v firefox-esr || command -v firefox || true)
  geckodriver=$(command -v geckodriver || { [ -x "$HOME/.cargo/bin/geckodriver" ] && echo "$HOME/.cargo/bin/geckodriver"; } || true)
  local want=() b
  for b in ${browsers//,/ }; do
    case $b in
      chromium)
        command -v chromium >/dev/null && command -v chromedriver >/dev/null || die "chromium or chromedriver missing (scripts/setup.sh)"
        want+=(chromium) ;;
      firefox)
        if [ -n "$firefox" ] && [ -n "$geckodriver" ]; then want+=(firefox)
        else echo "grid: firefox or geckodriver not installed: nodes get no firefox slots"; fi ;;
      *) die "unknown browser $b (chromium, firefox)" 2 ;;
    esac
  done
  [ ${#want[@]} -gt 0 ] || die "no browser to offer"
  browsers=$(IFS=,; echo "${want[*]}")
  mkdir -p "$state_dir"
  echo "hub_port $hub_port" > "$state"
  echo "nodes_made $nodes $slots $browsers" >> "$state"
  # The JVMs' options (GRID_JAVA_OPTS overrides them): a small heap, the serial collector, and the
  # JIT capped at C1. On these 2 cores the C2 compiler's own CPU outweighed what its faster code
  # saved for minutes: with C2 the JVMs used 1.9–3.0 s of CPU per 1000 proxied ops, with C1 1.1–1.8 s.
  local java_opts
  read -r -a java_opts <<<"${GRID_JAVA_OPTS:--Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
  local java=(java "${java_opts[@]}" -jar "$jar")
  spawn hub "${java[@]}" hub --host 127.0.0.1 --port "$hub_port" \
    --publish-events "tcp://127.0.0.1:$((hub_port - 2))" --subscribe-events "tcp://127.0.0.1:$((hub_port - 1))" \
    --bind-host false --healthcheck-interval 2 --reject-unsupported-caps true --session-request-timeout 60
  local i
  for i in $(seq 1 "$nodes"); do
    node_toml "$i" "$slots" "$browsers" "$hub_port" > "$state_dir/node-$i.toml"
    spawn "node-$i" "${java[@]}" node --config "$state_dir/node-$i.toml"
  done
  # ready: every node registered and UP
  local t0=$SECONDS j up kind name pid st
  while :; do
    if j=$(status_json "$hub_port" 2>/dev/null); then
      up=$(echo "$j" | jq '[.value.nodes[] | select(.availability == "UP")] | length')
      if [ "$(echo "$j" | jq -r .value.ready)" = true ] && [ "$up" -ge "$nodes" ]; then break; fi
    fi
    while read -r kind name pid st; do
      [ "$kind" = proc ] || continue
      [ "$(start_time "$pid")" = "$st" ] || { echo "grid: $name exited; see $state_dir/$name.log; stopping the grid" >&2; cmd_down >&2; exit 1; }
    done < "$state"
    if [ $((SECONDS - t0)) -ge 90 ]; then
      echo "grid: not ready after 90 s (logs in $state_dir); stopping it" >&2
      cmd_down >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "grid: up at $(hub_url "$hub_port") with $nodes node(s), $slots slot(s) each for $browsers ($((SECONDS - t0)) s)"
}

# One more node, numbered after the ones made so far, with the slots and browsers `up` was given;
# returns once the hub lists it UP (90 s at most, else it is stopped again with the rest by `down`).
cmd_add() {
  [ -f "$state" ] || die "no grid recorded in $state (start one with scripts/grid.sh up)"
  local hub_port made slots browsers
  hub_port=$(awk '$1=="hub_port"{print $2}' "$state")
  read -r made slots browsers < <(awk '$1=="nodes_made"{print $2, $3, $4}' "$state")
  [ -n "$made" ] || die "$state does not say how its nodes were made (brought up by an older grid.sh?)"
  [ -n "$jar" ] || die "no Selenium server jar in vendor/selenium (run scripts/setup-grid.sh as root)"
  firefox=$(command -v firefox-esr || command -v firefox || true)
  geckodriver=$(command -v geckodriver || { [ -x "$HOME/.cargo/bin/geckodriver" ] && echo "$HOME/.cargo/bin/geckodriver"; } || true)
  local i=$((made + 1)) up0 j up t0=$SECONDS
  up0=$(status_json "$hub_port" | jq '[.value.nodes[] | select(.availability == "UP")] | length') || die "hub on port $hub_port does not answer /status"
  sed -i "s/^nodes_made .*/nodes_made $i $slots $browsers/" "$state"
  local java_opts
  read -r -a java_opts <<<"${GRID_JAVA_OPTS:--Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
  node_toml "$i" "$slots" "$browsers" "$hub_port" > "$state_dir/node-$i.toml"
  spawn "node-$i" java "${java_opts[@]}" -jar "$jar" node --config "$state_dir/node-$i.toml"
  while :; do
    if j=$(status_json "$hub_port" 2>/dev/null); then
      up=$(echo "$j" | jq '[.value.nodes[] | select(.availability == "UP")] | length')
      [ "$up" -gt "$up0" ] && break
    fi
    [ $((SECONDS - t0)) -lt 90 ] || die "node-$i not UP after 90 s (see $state_dir/node-$i.log; scripts/grid.sh down stops it)"
    sleep 0.5
  done
  echo "grid: node-$i up ($((SECONDS - t0)) s)"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  add) cmd_add ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: scripts/grid.sh up [--nodes N] [--browsers chromium,firefox] [--slots K] [--hub-port P] | add | down | status" 2 ;;
esac

# shellcheck shell=bash
# Shared by scripts/grid.sh and scripts/netlab.sh (sourced, not run): the TOML of one Selenium Grid
# node, so a local Grid and the lab's nodes are configured alike (same Chromium flags, stereotypes
# and session timeout) and cannot drift apart.
#
#   . "$repo/scripts/grid-node.sh"
#   grid_node_toml I SLOTS BROWSERS NODE_HOST NODE_PORT HUB_HOST HUB_PORT > node-I.toml

# The Firefox binary and geckodriver stressctl's setup installs (empty when missing).
grid_firefox_path() { command -v firefox-esr || command -v firefox || true; }
grid_geckodriver_path() {
  command -v geckodriver || { local g="${CARGO_HOME:-$HOME/.cargo}/bin/geckodriver"; [ -x "$g" ] && echo "$g"; } || true
}

# Node I (its stereotypes carry "stressctl:node": "node-I", which is how stressctl places a
# session on a node) listening on NODE_HOST:NODE_PORT, registering with the hub at
# HUB_HOST:HUB_PORT (event bus on HUB_PORT-2 and HUB_PORT-1), SLOTS sessions per browser for the
# browsers in BROWSERS (chromium,firefox). Chromium gets the flags every stressctl Chromium gets
# (--no-sandbox: the node runs as root here), headless; Firefox -headless.
grid_node_toml() {
  local i=$1 slots=$2 browsers=$3 host=$4 port=$5 hub_host=$6 hub_port=$7
  local chromium_args='"--no-sandbox", "--headless=new", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"'
  cat <<EOT
[server]
host = "$host"
port = $port

[events]
publish = "tcp://$hub_host:$((hub_port - 2))"
subscribe = "tcp://$hub_host:$((hub_port - 1))"

[node]
grid-url = "http://$hub_host:$hub_port"
detect-drivers = false
max-sessions = $(( slots * $(echo "$browsers" | tr ',' '\n' | wc -l) ))
override-max-sessions = true
heartbeat-period = 2
register-cycle = 1
session-timeout = 120
EOT
  local b
  for b in ${browsers//,/ }; do
    case $b in
      chromium)
        cat <<EOT

[[node.driver-configuration]]
display-name = "chromium"
webdriver-executable = "$(command -v chromedriver)"
max-sessions = $slots
stereotype = '{"browserName": "chrome", "platformName": "linux", "stressctl:node": "node-$i", "goog:chromeOptions": {"binary": "$(command -v chromium)", "args": [$chromium_args]}}'
EOT
        ;;
      firefox)
        cat <<EOT

[[node.driver-configuration]]
display-name = "firefox"
webdriver-executable = "$(grid_geckodriver_path)"
max-sessions = $slots
stereotype = '{"browserName": "firefox", "platformName": "linux", "stressctl:node": "node-$i", "moz:firefoxOptions": {"binary": "$(grid_firefox_path)", "args": ["-headless"]}}'
EOT
        ;;
    esac
  done
}

#!/usr/bin/env bash
# A private Prometheus server on 127.0.0.1, for tests and for trying `repropack run --metrics` by hand.
#   prometheus.sh start DIR TARGET...   config and data under DIR, scrapes each HOST:PORT every second;
#                                       prints "PORT PID" once the server answers /-/ready
#   prometheus.sh pushgateway DIR       a Pushgateway; prints "PORT PID" once it answers /-/ready
#   prometheus.sh stop DIR              stops the server (or gateway) started with DIR
#   prometheus.sh check DIR             starts one scraping itself, asks its API for `up`, stops it
# Nothing listens beyond 127.0.0.1; the Debian package's own service is not used.
set -euo pipefail
cmd=${1:?usage: prometheus.sh start|stop|check DIR [TARGET...]}; dir=${2:?missing DIR}; shift 2
command -v prometheus >/dev/null || { echo "prometheus is not installed (scripts/engines.sh prometheus)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() {
  local port targets="" t
  mkdir -p "$dir/data"
  port=$(free_port)
  for t in "$@"; do targets+="\"$t\", "; done
  cat >"$dir/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: repropack
    static_configs:
      - targets: [${targets%, }]
CONF
  setsid prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local i
  for ((i = 0; i < 60; i++)); do
    if curl -fsS --noproxy '*' "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
      echo "$port $(cat "$dir/pid")"; return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.5
  done
  echo "prometheus did not come up:" >&2; tail -20 "$dir/prometheus.log" >&2; stop; return 1
}

pushgateway() {
  local port i
  mkdir -p "$dir"
  port=$(free_port)
  setsid prometheus-pushgateway --web.listen-address="127.0.0.1:$port" >"$dir/pushgateway.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for ((i = 0; i < 60; i++)); do
    if curl -fsS --noproxy '*' "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
      echo "$port $(cat "$dir/pid")"; return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.5
  done
  echo "prometheus-pushgateway did not come up:" >&2; tail -20 "$dir/pushgateway.log" >&2; stop; return 1
}

stop() {
  local pid
  pid=$(cat "$dir/pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case "$cmd" in
  start) start "$@" ;;
  pushgateway) pushgateway ;;
  stop) stop ;;
  check)
    read -r port _ < <(start "127.0.0.1:0")  # a target nothing answers: `up` is then 0, which is enough
    trap stop EXIT
    sed -i "s/127.0.0.1:0/127.0.0.1:$port/" "$dir/prometheus.yml"
    kill -HUP "$(cat "$dir/pid")"
    for _ in $(seq 30); do
      if curl -fsS --noproxy '*' "http://127.0.0.1:$port/api/v1/query?query=up" | grep -q '"value":\[[^]]*"1"\]'; then
        echo "server on 127.0.0.1:$port scraped itself (up == 1)"; exit 0
      fi
      sleep 1
    done
    echo "no up == 1 within 30 s" >&2; exit 1 ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The stress test of the seed project, against wschan and ws in one run, with tcpkali when it is
# on the PATH and always with the project's own load generator (the same flags):
#
#   npm run stress:compare                 # 10 s per run; SECONDS_PER_RUN=5 to shorten
#
# Each server runs alone on core 0 (taskset, when there are 2+ cores), the load on core 1.
# Loopback only; every run is bounded by -T.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${SECONDS_PER_RUN:-10}
MSG='hello world!!13212312!'
pin_server=(); pin_load=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 0); pin_load=(taskset -c 1); fi
[ -f dist/stress-tests/echo-server.js ] || npm run build --silent

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

start() { # name -> sets PID and PORT
  PORT=$(free_port)
  case $1 in
    wschan) "${pin_server[@]}" node dist/stress-tests/echo-server.js --port "$PORT" >/dev/null 2>&1 & ;;
    ws) "${pin_server[@]}" node bench/peers/ws-echo.mjs --port "$PORT" >/dev/null 2>&1 & ;;
  esac
  PID=$!
  for _ in $(seq 1 50); do (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0; sleep 0.1; done
  echo "$1 did not start" >&2; exit 1
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

# messages/s from tcpkali's byte counts: a 22-byte text frame is 28 bytes masked (up), 24 unmasked (down)
kali_rates() { awk -v t="$T" '/^Total data sent:/ {gsub(/[()]/,"",$6); up=$6} /^Total data received:/ {gsub(/[()]/,"",$6); down=$6} END {printf "sent %.0f msg/s, echoed %.0f msg/s", up/28/t, down/24/t}'; }

for server in wschan ws; do
  for rate in 10k 100k; do
    if command -v tcpkali >/dev/null; then
      start "$server"
      out=$("${pin_load[@]}" tcpkali --ws -c 100 -m "$MSG" -r "$rate" -T "${T}s" "127.0.0.1:$PORT" 2>/dev/null)
      stop
      echo "tcpkali  $server -c 100 -r $rate: $(echo "$out" | kali_rates)"
    else
      echo "tcpkali  $server -c 100 -r $rate: skipped (tcpkali is not on the PATH)"
    fi
    start "$server"
    out=$("${pin_load[@]}" node dist/stress-tests/loadgen/main.js --ws -c 100 -m "$MSG" -r "$rate" -T "${T}s" -q "127.0.0.1:$PORT")
    stop
    rates=$(echo "$out" | sed -n 's/^Packet rate estimate: \([0-9.]*\)↓, \([0-9.]*\)↑.*/sent \2 msg\/s, echoed \1 msg\/s/p')
    lat=$(echo "$out" | sed -n 's/^Latency: //p')
    echo "loadgen  $server -c 100 -r $rate: $rates; latency $lat"
  done
done

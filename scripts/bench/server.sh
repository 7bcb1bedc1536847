#!/usr/bin/env bash
# scripts/bench/server.sh — Omaha update checks/s of cairn-server on loopback (wrk, 64 connections, POST), against nginx
# serving a small static file the same way as the ceiling. Prints a table: req/s, p99 latency, peak RSS, ratio.
# Env: BENCH_SECS (default 10), BENCH_THREADS (cairn-server --threads, default 4).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../tests/lib/common.sh"
cd "$(dirname "$0")/../.."
SECS=${BENCH_SECS:-10}
SERVER=$PWD/build/bin/cairn-server
command -v wrk >/dev/null || { echo "bench: wrk not installed (scripts/deps.sh)"; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench: nginx not installed (scripts/deps.sh)"; exit 1; }
[ -x "$SERVER" ] || make -s build/bin/cairn-server

T=$(mktemp -d /tmp/cairn-bench-server.XXXXXX)
SPID= NPID=
cleanup() {
        [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
        [ -n "$NPID" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
        rm -rf "$T"
}
on_exit cleanup

REL=$T/rel
mkdir -p "$REL/payloads/1.1.0" "$REL/channels" "$REL/static"
head -c $((1024 * 1024)) /dev/urandom >"$REL/payloads/1.1.0/cairn-1.1.0-amd64.cairn"
printf 'VERSION=1.1.0\nROLLOUT=100\nPAUSED=0\nMAX_PER_PERIOD=0\nPERIOD=3600\n' >"$REL/channels/stable"

req() { # version
        printf '<?xml version="1.0" encoding="UTF-8"?>\n<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1"><os version="Chateau" platform="CoreOS" sp="%s_x86_64"></os><app appid="{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}" version="%s" track="stable" bootid="{b00}" oem="qemu" machineid="8f14e45fceea167a5a36dedd4bea2543" machinealias="" lang="en-US" board="amd64" hardware_class="" delta_okay="false"><ping active="1"></ping><updatecheck></updatecheck><event eventtype="3" eventresult="2" previousversion=""></event></app></request>' "$1" "$1"
}
lua() { # file version
        { echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "text/xml"'
          printf 'wrk.body = [==[%s]==]\n' "$(req "$2")"; } >"$1"
}
lua "$T/noupdate.lua" 1.1.0
lua "$T/ok.lua" 1.0.0

CAIRN_SERVER=$SERVER start_cairn_server SRV "$T/out" "$T/server.log" --reldir "$REL" --db "$T/db.sqlite" \
        --threads "${BENCH_THREADS:-4}"
SPID=$SRV_PID SPORT=$SRV_PORT

# The static file nginx serves: the size of a typical noupdate answer.
curl -s --data-binary "$(req 1.1.0)" "http://127.0.0.1:$SPORT/v1/update/" >"$REL/static/answer.xml"
grep -q 'status="noupdate"' "$REL/static/answer.xml" || { echo "bench: unexpected answer"; exit 1; }
curl -s --data-binary "$(req 1.0.0)" "http://127.0.0.1:$SPORT/v1/update/" | grep -q '<updatecheck status="ok">' \
        || { echo "bench: no ok answer"; exit 1; }

NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/nginx/tmp"
cat >"$T/nginx/nginx.conf" <<EOC
daemon off;
master_process off;
pid $T/nginx/nginx.pid;
error_log $T/nginx.log warn;
events { worker_connections 1024; }
http {
        access_log off;
        client_body_temp_path $T/nginx/tmp/body;
        proxy_temp_path $T/nginx/tmp/proxy;
        fastcgi_temp_path $T/nginx/tmp/fastcgi;
        uwsgi_temp_path $T/nginx/tmp/uwsgi;
        scgi_temp_path $T/nginx/tmp/scgi;
        default_type application/xml;
        keepalive_requests 1000000;
        server { listen 127.0.0.1:$NPORT; root $REL/static; }
}
EOC
"$NGINX" -e "$T/nginx.log" -p "$T/nginx" -c "$T/nginx/nginx.conf" &
NPID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$NPORT/answer.xml" && break; sleep 0.05; done

run_wrk() { # label url [lua]
        local out=$T/wrk-$1.txt
        if [ -n "${3:-}" ]; then wrk -t2 -c64 -d"${SECS}s" --latency -s "$3" "$2" >"$out"
        else wrk -t2 -c64 -d"${SECS}s" --latency "$2" >"$out"; fi
        RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        P99=$(awk '$1 == "99%" {print $2}' "$out")
        ERRS=$(awk '/Non-2xx|Socket errors/ {print}' "$out" | tr '\n' ' ')
}
hwm() { awk '/^VmHWM/ {print $2 " " $3}' "/proc/$1/status"; }

run_wrk nginx "http://127.0.0.1:$NPORT/answer.xml"
N_RPS=$RPS N_P99=$P99 N_ERR=$ERRS
run_wrk noupdate "http://127.0.0.1:$SPORT/v1/update/" "$T/noupdate.lua"
U_RPS=$RPS U_P99=$P99 U_ERR=$ERRS
run_wrk ok "http://127.0.0.1:$SPORT/v1/update/" "$T/ok.lua"
O_RPS=$RPS O_P99=$P99 O_ERR=$ERRS
S_RSS=$(hwm "$SPID") N_RSS=$(hwm "$NPID")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\nwrk -t2 -c64 -d%ss --latency, loopback, %s cores\n' "$SECS" "$(nproc)"
printf '%-34s %12s %10s %14s %8s\n' "target" "req/s" "p99" "peak RSS" "ratio"
printf '%-34s %12s %10s %14s %8s\n' "nginx static file (ceiling)" "$N_RPS" "$N_P99" "$N_RSS" "1.00"
printf '%-34s %12s %10s %14s %8s\n' "cairn-server updatecheck noupdate" "$U_RPS" "$U_P99" "$S_RSS" "$(ratio "$U_RPS" "$N_RPS")"
printf '%-34s %12s %10s %14s %8s\n' "cairn-server updatecheck ok" "$O_RPS" "$O_P99" "$S_RSS" "$(ratio "$O_RPS" "$N_RPS")"
for e in "$N_ERR" "$U_ERR" "$O_ERR"; do [ -z "$e" ] || echo "note: $e"; done
echo "(target: ratio >= 0.50 and p99 < 20ms; server RSS is the peak over both cairn-server runs)"

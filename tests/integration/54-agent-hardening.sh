#!/usr/bin/env bash
# tests/integration/54-agent-hardening.sh — the agent against a hostile or broken server, disk limit and operator
# mistakes (issue 12, "The agent"): a payload trickled at 2 bytes/s is abandoned (low-speed limit) and retried
# with backoff, a transfer over its deadline is abandoned, SIGTERM during a transfer ends the daemon promptly with
# the resume record saved (and the next run resumes), out-of-range numbers in the state file and update.conf
# (LAST_CHECK=2^63-1 crashed cairnctl and the daemon; a rate limit of 2^64 wrapped to "unlimited"), server text
# that tries to forge log lines, a file-size limit (ulimit -f), the signal mask and dispositions children start
# with, the next <url> after a dead one, update_engine error codes in events, and the app status as the reason.
# Every case runs; the failures are listed at the end. CAIRN_BIN=DIR runs it against other binaries.
source "$(dirname "$0")/../lib/agent-fixture.sh"
fx_all
P2_SIZE=$(stat -c %s "$P2")
FAILED=()
bad_case() { echo "FAIL: $*"; FAILED+=("$1"); }

# ---- a misbehaving Omaha + payload server, its behaviour read from $T/mode.json on every request ----
cat >"$T/hostile.py" <<'PY'
import base64, hashlib, http.server, json, os, sys, time
T = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def mode(self): return json.load(open(f"{T}/mode.json"))
    def send(self, code, body, ctype="text/xml", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        m = self.mode()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with open(f"{T}/posts.log", "a") as f: f.write(body.replace("\n", " ") + "\n")
        p = m["payload"]
        size = os.path.getsize(p)
        sha = base64.b64encode(hashlib.sha256(open(p, "rb").read()).digest()).decode() # as cairn-server sends it
        port = self.server.server_address[1]
        urls = "".join(f'<url codebase="{u.replace("SELF", f"http://127.0.0.1:{port}/p/")}"/>' for u in m.get("urls", ["SELF"]))
        uc = m.get("uc_status", "ok")
        inner = ""
        if uc == "ok":
            inner = (f'<urls>{urls}</urls><manifest version="{m["version"]}"><packages><package name="{os.path.basename(p)}"'
                     f' size="{size}"/></packages><actions><action event="postinstall" sha256="{sha}"/></actions></manifest>')
        ucx = "" if m.get("no_updatecheck") else f'<updatecheck status="{uc}">{inner}</updatecheck>'
        body = f'<response protocol="3.0"><app status="{m.get("app_status", "ok")}">{ucx}</app></response>'
        self.send(200, body.encode())
    def do_GET(self):
        m = self.mode()
        if m.get("get") == "404": return self.send(404, b"no")
        data = open(m["payload"], "rb").read()
        a, b = (int(x) for x in self.headers.get("Range", "").split("=")[1].split("-"))
        part = data[a:b + 1]
        if m.get("get") == "trickle" and len(part) > m.get("trickle_min", 100000):
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            fast = len(part) // 3
            self.wfile.write(part[:fast]); self.wfile.flush()
            open(f"{T}/trickling", "w").write("1")
            rate = m.get("rate", 2)
            try:
                for i in range(fast, len(part), rate):
                    time.sleep(1)
                    self.wfile.write(part[i:i + rate]); self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return
        self.send(206, part, "application/octet-stream", [("Content-Range", f"bytes {a}-{b}/{len(data)}")])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
PY
mode() { echo "$1" >"$T/mode.json"; }
mode '{"payload": "'"$P2"'", "version": "2.0.0"}'
python3 "$T/hostile.py" "$T" >"$T/hostile.port" 2>"$T/hostile.log" &
EXTRA_PIDS=$!
for _ in $(seq 100); do [ -s "$T/hostile.port" ] && break; sleep 0.05; done
HPORT=$(cat "$T/hostile.port")
HURL=http://127.0.0.1:$HPORT/v1/update/

fresh() { # a fresh disk (v1 in A, B empty), host root and state; update.conf points at the hostile server
        cp --sparse=always "$T/disk0.img" "$T/disk.img"
        fx_root
        sed -i "s|^SERVER=.*|SERVER=$HURL|" "$R/etc/cairn/update.conf"
        : >"$T/agent.log"; : >"$T/posts.log"; rm -f "$T/trickling"
        mode '{"payload": "'"$P2"'", "version": "2.0.0"}'
}
# agent_once, bounded (binaries that hang on a case must not hang the test)
once() { timeout -s KILL 60 "$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1 "$@" \
                >>"$T/agent.log" 2>&1; }
conf() { printf '%s\n' "$@" >>"$R/etc/cairn/update.conf"; }
daemon() { # start cairn-updated in the background (extra args passed on)
        "$B/cairn-updated" --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1 --no-delta \
                --socket "$T/d.sock" "$@" >>"$T/agent.log" 2>&1 &
        DPID=$!
}
stop_daemon() { if [ -n "$DPID" ]; then kill -9 "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi; DPID=; }
wait_for() { # SECONDS CONDITION...: poll until the condition holds; 1 when it never did
        local end=$((SECONDS + $1)); shift
        until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}
log_has() { grep -Eq "$1" "$T/agent.log"; }
count_log() { grep -Ec "$1" "$T/agent.log" || true; }

# ==== 1. slow transfers: low-speed limit + retry with backoff, deadline, SIGTERM mid-transfer ====
fresh
conf HTTP_LOW_SPEED_LIMIT=1K HTTP_STALL_TIMEOUT=2 BACKOFF_BASE=1 BACKOFF_MAX=2 FIRST_CHECK_DELAY=0 HEALTH_DELAY=0
mode '{"payload": "'"$P2"'", "version": "2.0.0", "get": "trickle", "rate": 2}'
t0=$SECONDS
daemon
retried_twice() { [ "$(count_log 'next try in')" -ge 2 ] && [ "$(count_log 'Operation too slow')" -ge 2 ]; }
if wait_for 40 retried_twice; then
        ok "2 bytes/s payload abandoned (HTTP_LOW_SPEED_LIMIT=1K over HTTP_STALL_TIMEOUT=2) and retried with backoff: $(grep -m1 'too slow' "$T/agent.log" | cut -c1-160)"
else
        bad_case "trickle abandoned + retried" "after $((SECONDS - t0)) s: $(tail -n 3 "$T/agent.log")"
fi
stop_daemon

fresh
conf HTTP_LOW_SPEED_LIMIT=1K HTTP_STALL_TIMEOUT=60 HTTP_TRANSFER_TIMEOUT=4
mode '{"payload": "'"$P2"'", "version": "2.0.0", "get": "trickle", "rate": 8192}'
t0=$SECONDS; rc=0
timeout -s KILL 40 "$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1 \
        --no-delta >>"$T/agent.log" 2>&1 || rc=$?
el=$((SECONDS - t0))
if [ $rc = 1 ] && [ $el -le 30 ] && log_has 'HTTP_TRANSFER_TIMEOUT=4 s' && [ "$(state_get STATE)" = REPORTING_ERROR ]; then
        ok "a transfer at 8 KiB/s (above the low-speed limit) abandoned at its deadline after $el s: $(grep -m1 HTTP_TRANSFER_TIMEOUT "$T/agent.log" | cut -c1-160)"
else
        bad_case "transfer deadline" "rc=$rc after $el s: $(tail -n 2 "$T/agent.log")"
fi

fresh
conf HTTP_LOW_SPEED_LIMIT=1 HTTP_STALL_TIMEOUT=3600 FIRST_CHECK_DELAY=0 HEALTH_DELAY=0
mode '{"payload": "'"$P2"'", "version": "2.0.0", "get": "trickle", "rate": 2}'
daemon
if wait_for 30 test -e "$T/trickling"; then
        sleep 1.5 # the fast third has been received and checkpointed
        t0=$(date +%s%N); kill -TERM "$DPID"
        rc=0; exited=false
        for _ in $(seq 150); do kill -0 "$DPID" 2>/dev/null || { exited=true; break; }; sleep 0.1; done
        ms=$((($(date +%s%N) - t0) / 1000000))
        if $exited; then wait "$DPID" || rc=$?; DPID=; fi
        next=$(state_get RESUME_NEXT)
        if $exited && [ $rc = 0 ] && [ "$(state_get RESUME_SLOT)" = B ] && [ "$(state_get RESUME_VERSION)" = 2.0.0 ] &&
                [ "${next:-0}" -gt 0 ] && [ "$(state_get STATE)" = IDLE ] && log_has 'stopping on signal 15'; then
                ok "SIGTERM during a 2 bytes/s transfer: daemon exited 0 after $ms ms, resume record RESUME_SLOT=B RESUME_NEXT=$next saved"
                mode '{"payload": "'"$P2"'", "version": "2.0.0"}'
                if once --no-delta && [ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] &&
                        [ "$(state_get BYTES_DOWNLOADED)" -lt "$P2_SIZE" ]; then
                        ok "the next run resumed at chunk $next: slot B = v2, $(state_get BYTES_DOWNLOADED) of $P2_SIZE bytes fetched"
                else
                        bad_case "resume after SIGTERM" "$(tail -n 2 "$T/agent.log"); downloaded $(state_get BYTES_DOWNLOADED)"
                fi
        else
                bad_case "SIGTERM mid-transfer" "exited=$exited rc=$rc after $ms ms; state: $(grep -E '^(STATE|RESUME_)' "$R/var/lib/cairn/state" | tr '\n' ' ')"
        fi
else
        bad_case "SIGTERM mid-transfer" "the transfer never started: $(tail -n 2 "$T/agent.log")"
fi
stop_daemon

# ==== 2. numbers out of range: state file and update.conf ====
fresh
printf 'STATE=IDLE\nLAST_CHECK=9223372036854775807\n' >"$R/var/lib/cairn/state"
rc=0; "$B/cairnctl" --root "$R" status >"$T/st.txt" 2>"$T/st.err" || rc=$?
if [ $rc = 0 ] && grep -q '^last check: *never' "$T/st.txt" && grep -q 'LAST_CHECK="9223372036854775807" is out of range' "$T/st.err"; then
        ok "cairnctl status on LAST_CHECK=2^63-1: $(head -c 150 "$T/st.err")"
else
        bad_case "cairnctl status, LAST_CHECK=2^63-1" "rc=$rc (139 = SEGV) $(cat "$T/st.err" "$T/st.txt" | head -n 3)"
fi
conf FIRST_CHECK_DELAY=3600 HEALTH_DELAY=3600
daemon
if wait_for 10 test -S "$T/d.sock" && "$B/cairnctl" --socket "$T/d.sock" status >"$T/st.txt" 2>&1 &&
        grep -q '^daemon: *running' "$T/st.txt" && grep -q '^last check: *never' "$T/st.txt" && kill -0 "$DPID" &&
        log_has 'state file .*LAST_CHECK="9223372036854775807" is out of range.*reset'; then
        ok "the daemon on the same state file: one line ($(grep -m1 'LAST_CHECK' "$T/agent.log" | cut -c1-120)…), status over the socket, still running"
else
        bad_case "daemon, LAST_CHECK=2^63-1" "$(cat "$T/st.txt" | head -n 2); $(tail -n 2 "$T/agent.log")"
fi
stop_daemon
printf 'STATE=IDLE\nFAILURES=99999999999999999999\nCHUNKS_DONE=4294967296\nLAST_CHECK=1700000000\n' >"$R/var/lib/cairn/state"
rc=0; "$B/cairnctl" --root "$R" status >"$T/st.txt" 2>"$T/st.err" || rc=$?
if [ $rc = 0 ] && grep -q 'FAILURES="99999999999999999999" is out of range.*reset' "$T/st.err" && grep -q 'CHUNKS_DONE=' "$T/st.err" &&
        grep -q '^last check: *2023-11-14 22:13:20 UTC' "$T/st.txt"; then
        ok "FAILURES=10^20-1, CHUNKS_DONE=2^32 reset with one line, the good fields kept: $(head -c 120 "$T/st.err")…"
else
        bad_case "state numbers reset" "rc=$rc $(cat "$T/st.err" "$T/st.txt" | head -n 3)"
fi
fresh
conf DOWNLOAD_RATE_LIMIT=17179869184G
rc=0; once || rc=$?
if [ $rc = 1 ] && [ "$(grep -c . "$T/agent.log")" = 1 ] &&
        log_has 'config ".*/etc/cairn/update.conf" line [0-9]+: DOWNLOAD_RATE_LIMIT="17179869184G" is out of range'; then
        ok "DOWNLOAD_RATE_LIMIT=17179869184G refused: $(cat "$T/agent.log")"
else
        bad_case "rate limit 2^64" "rc=$rc $(head -n 2 "$T/agent.log")"
fi
fresh
conf CHECK_INTERVAL=4294967297
rc=0; once || rc=$?
[ $rc = 1 ] && log_has 'CHECK_INTERVAL="4294967297" is out of range' && ok "CHECK_INTERVAL=2^32+1 refused" ||
        bad_case "check interval 2^32+1" "rc=$rc $(head -n 2 "$T/agent.log")"

# ==== 3. server text cannot forge log lines ====
forge_case() { # NAME MODE-JSON ESCAPED-TEXT-EXPECTED (grep -F, "" when nothing of it needs to be logged)
        fresh
        mode "$2"
        local rc=0
        once || rc=$?
        if grep -q '^FORGED' "$T/agent.log"; then
                bad_case "forged log line: $1" "$(grep -n '^FORGED' "$T/agent.log" | head -n 2)"
        elif [ $rc != 1 ]; then
                bad_case "forged log line: $1" "rc=$rc"
        elif [ -n "$3" ] && ! grep -qF -- "$3" "$T/agent.log"; then
                bad_case "forged log line: $1" "escaped text not logged: $(cat "$T/agent.log")"
        else
                ok "$1: no forged line; logged: $(tail -n 1 "$T/agent.log" | cut -c1-170)"
        fi
}
forge_case "codebase with &#10;" '{"payload": "'"$P2"'", "version": "2.0.0", "urls": ["http://127.0.0.1:'"$HPORT"'/p/&#10;FORGED updated to 9.9.9; reboot pending&#10;"]}' ""
forge_case "updatecheck status with &#10;" '{"payload": "'"$P2"'", "version": "2.0.0", "uc_status": "error-x&#10;FORGED updated to 9.9.9; reboot pending"}' '\x0aFORGED updated'
forge_case "app status with &#13;&#10;" '{"payload": "'"$P2"'", "version": "2.0.0", "app_status": "error-y&#13;&#10;FORGED rolled back"}' '\x0d\x0aFORGED rolled back'

# ==== 6. the app status is the reason, update_engine's error codes, the next <url> after a dead one ====
fresh
mode '{"payload": "'"$P2"'", "version": "2.0.0", "app_status": "error-unknownApplication", "no_updatecheck": true}'
rc=0; once || rc=$?
if [ $rc = 1 ] && log_has 'answered the check with app status "error-unknownApplication"' &&
        grep -q 'eventtype="3" eventresult="0" errorcode="34"' "$T/posts.log"; then
        ok "app status error-unknownApplication logged as the reason, event 3/0 errorcode 34 (kActionCodeOmahaResponseInvalid)"
else
        bad_case "app status reason + code 34" "rc=$rc $(tail -n 1 "$T/agent.log"); events: $(grep -o '<event[^>]*>' "$T/posts.log" | tr '\n' ' ')"
fi
fresh
mode '{"payload": "'"$P2"'", "version": "2.0.0", "get": "404"}'
rc=0; once || rc=$?
[ $rc = 1 ] && grep -q 'eventtype="3" eventresult="0" errorcode="9"' "$T/posts.log" &&
        ok "payload 404: event 3/0 errorcode 9 (kActionCodeDownloadTransferError)" ||
        bad_case "code 9 for a payload 404" "rc=$rc $(grep -o '<event[^>]*>' "$T/posts.log" | tr '\n' ' ')"
fresh
mode '{"payload": "'"$P2"'", "version": "2.0.0", "urls": ["http://127.0.0.1:1/p/", "SELF"]}'
rc=0; once --no-delta || rc=$?
if [ $rc = 0 ] && [ "$(state_get STATE)" = UPDATED_NEED_REBOOT ] && [ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ]; then
        ok "first <url> dead (127.0.0.1:1): the second one served the update, slot B = v2"
else
        bad_case "next <url> after a dead one" "rc=$rc $(tail -n 2 "$T/agent.log")"
fi

# ==== 4. a file-size limit: EFBIG reported, not a silent SIGXFSZ ====
fresh
mode '{"payload": "'"$P2"'", "version": "2.0.0"}'
limit_kb=$(( (B_START * 512 + 2 * 1024 * 1024) / 1024 )) # 2 MiB into slot B
rc=0; (ulimit -f "$limit_kb"; once --no-delta) || rc=$?
if [ $rc = 1 ] && log_has 'writing the target slot at byte [0-9]+: File too large \(a file-size limit, ulimit -f' &&
        grep -q 'errorcode="14"' "$T/posts.log" && [ "$(bc_status | json_get 'd["next"]')" = A ]; then
        ok "ulimit -f $limit_kb: $(grep -m1 'File too large' "$T/agent.log" | cut -c1-150); event code 14"
else
        bad_case "ulimit -f" "rc=$rc (153 = killed by SIGXFSZ) $(tail -n 2 "$T/agent.log")"
fi

# ==== 5. children start with a clean signal mask and default dispositions ====
fresh
mode '{"payload": "'"$P2"'", "version": "2.0.0"}'
"$B/cairn-bootcfg" --disk "$T/disk.img" --state-dir "$T/bcs" --booted A --force set-next A >/dev/null # A unverified
mkdir -p "$R/etc/cairn/health.d"
# awk reads its own /proc/self/status: it keeps the mask it was started with (dash clears the mask of the
# commands it forks, and blocks everything itself while it waits, so a plain sh script would see neither).
SIGPROG='BEGIN { while ((getline l < "/proc/self/status") > 0) if (l ~ /^Sig(Blk|Ign):/) print l }'
printf '#!%s -f\n%s\n' "$(command -v awk)" "${SIGPROG/print l/print l > \"$T/health-sig\"}" >"$R/etc/cairn/health.d/10-sig"
chmod +x "$R/etc/cairn/health.d/10-sig"
sed -i 's/^REBOOT_STRATEGY=off/REBOOT_STRATEGY=reboot/' "$R/etc/cairn/update.conf"
conf FIRST_CHECK_DELAY=0 HEALTH_DELAY=0
daemon --reboot-cmd "exec awk '$SIGPROG' >$T/reboot-sig"
wait_for 60 test -s "$T/reboot-sig" || true
sleep 0.2
stop_daemon
clean_sigs() { # FILE WHAT: SigBlk without SIGINT/SIGTERM, SigIgn without SIGPIPE/SIGXFSZ
        [ -s "$1" ] || { bad_case "$2 signals" "$2 did not run: $(tail -n 2 "$T/agent.log")"; return; }
        local blk ign
        blk=$(sed -n 's/^SigBlk:\s*//p' "$1"); ign=$(sed -n 's/^SigIgn:\s*//p' "$1")
        if (( (16#$blk & (1 << 1 | 1 << 14)) == 0 && (16#$ign & (1 << 12 | 1 << 24)) == 0 )); then
                ok "$2 started with SigBlk=$blk SigIgn=$ign (no SIGINT/SIGTERM blocked, no SIGPIPE/SIGXFSZ ignored)"
        else
                bad_case "$2 signals" "SigBlk=$blk SigIgn=$ign"
        fi
}
clean_sigs "$T/health-sig" "health check"
clean_sigs "$T/reboot-sig" "reboot command"

if [ ${#FAILED[@]} -gt 0 ]; then
        echo "FAIL: ${#FAILED[@]} case(s): ${FAILED[*]}"
        exit 1
fi
echo PASS

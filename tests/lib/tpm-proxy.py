#!/usr/bin/env python3
"""tests/lib/tpm-proxy.py — a TCP proxy in front of swtpm for tests/integration/60-tpm-swtpm.sh: forwards the TPM
command port and the control port (port+1) unchanged, except that the first TPM2_PCR_Extend command it sees makes
it kill swtpm (the pid in PIDFILE) and drop the connection, so the TPM dies exactly between a caller's operations.

usage: tpm-proxy.py LISTEN_PORT SWTPM_PORT PIDFILE READYFILE"""
import os, signal, socket, struct, sys, threading

listen, target, pidfile, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
CC_PCR_EXTEND = 0x182


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def ctrl(client):
    up = socket.create_connection(("127.0.0.1", target + 1))
    threading.Thread(target=pump, args=(client, up), daemon=True).start()
    pump(up, client)


def tpm(client):
    up = socket.create_connection(("127.0.0.1", target))
    try:
        while True:
            hdr = recv_exact(client, 10)
            if hdr is None:
                break
            _, size, cc = struct.unpack(">HII", hdr)
            if cc == CC_PCR_EXTEND:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), signal.SIGKILL)
                break
            body = recv_exact(client, size - 10) if size > 10 else b""
            up.sendall(hdr + (body or b""))
            rh = recv_exact(up, 6)
            if rh is None:
                break
            _, rsize = struct.unpack(">HI", rh)
            client.sendall(rh + (recv_exact(up, rsize - 6) or b""))
    except OSError:
        pass
    client.close()
    up.close()


def serve(port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    return s


socks = [(serve(listen, tpm), tpm), (serve(listen + 1, ctrl), ctrl)]
open(ready, "w").close()


def accept_loop(s, handler):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


threading.Thread(target=accept_loop, args=socks[1], daemon=True).start()
accept_loop(*socks[0])

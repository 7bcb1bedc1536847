#!/usr/bin/env python3
# scripts/bench/change-image.py IMAGE WHO WHAT — the benchmarks' "one file changed" /usr image, made in place: the
# first regular file of ~1 MiB gets new random blocks (seeded, so every run makes the same image) and the first small
# config file gets a changed first line; WHO (the script's name) goes into that line and the log line, WHAT names
# the case. Files are found and their blocks mapped with debugfs.
import os, random, subprocess, sys
img, who, what = sys.argv[1:4]
def dbg(cmd):
    return subprocess.run(["debugfs", "-R", cmd, img], capture_output=True, text=True).stdout
big = small = None
todo = ["/"]
while todo and not (big and small):
    d = todo.pop(0)
    for line in dbg(f"ls -p {d}").splitlines():
        f = line.split("/")
        if len(f) < 7 or f[5] in (".", ".."): continue
        path = d.rstrip("/") + "/" + f[5]
        if f[2].startswith("04"): todo.append(path); continue
        if not f[2].startswith("10") or not f[6]: continue
        n = int(f[6])
        if not big and 900_000 <= n <= 1_300_000: big = path
        if not small and 100 <= n <= 4000 and path.endswith((".conf", ".cfg", ".ini", ".json", ".txt")): small = path
rnd = random.Random(7)
fd = os.open(img, os.O_RDWR)
for path, whole in ((big, True), (small, False)):
    blocks = [int(b) for b in dbg(f"blocks {path}").split()]
    for b in (blocks if whole else blocks[:1]):
        os.pwrite(fd, rnd.randbytes(4096) if whole else f"# changed by {who}\n".encode(), b * 4096)
    print(f"{who}: {what} changes {path} ({len(blocks)} blocks{'' if whole else ', first bytes'})", file=sys.stderr)
os.close(fd)

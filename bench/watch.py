#!/usr/bin/env python3
"""Watched-folder benchmarks, against the sandbox on loopback, with the release `dropkey`:

1. latency from a file's close to its upload starting: median and p99 over 200 files
2. 10,000 small files created within 10 s: all uploaded exactly once, total time, peak RSS
3. an idle watch on a tree of 50,000 files: CPU and RSS

Prints a table. Run from the repository root: python3 bench/watch.py (bench/watch.sh builds
first)."""
import json, os, re, signal, statistics, subprocess, sys, tempfile, time
from datetime import datetime

DK = os.path.abspath("target/release/dropkey")
work = tempfile.mkdtemp(prefix="dropkey-watch-bench.")
env = dict(os.environ)
env["DROPKEY_SECRET_SANDBOX"] = "private_watch_bench_key"
env["DROPKEY_DATA_DIR"] = os.path.join(work, "data")

sandbox = subprocess.Popen([DK, "sandbox", "--listen", "127.0.0.1:0", "--root", os.path.join(work, "sb")],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
listen = json.loads(sandbox.stdout.readline())["listen"]
ledger = os.path.join(work, "sb", "ledger.jsonl")
with open(os.path.join(work, "config.toml"), "w") as f:
    f.write(f'[sandbox]\nlisten = "{listen}"\n[upload]\nconcurrency = 8\n')
env["DROPKEY_CONFIG"] = os.path.join(work, "config.toml")


def ledger_count():
    try:
        with open(ledger) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def start_watch(folder, log_path):
    e = dict(env, DROPKEY_LOG="dropkey=info")
    return subprocess.Popen([DK, "watch", "sandbox", folder], stdout=subprocess.DEVNULL,
                            stderr=open(log_path, "w"), env=e)


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ledger(n, timeout):
    deadline = time.time() + timeout
    while ledger_count() < n:
        if time.time() > deadline:
            raise SystemExit(f"only {ledger_count()} of {n} uploads landed")
        time.sleep(0.05)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)


results = []
# BENCH_STAGES=3 runs only the idle-tree stage, for example.
STAGES = set((os.environ.get("BENCH_STAGES") or "123").replace(",", ""))


def report(name, value, target):
    # Printed as measured, so a later stage failing does not lose the earlier figures.
    results.append((name, value, target))
    print(f"measured: {name}: {value} (target: {target})", file=sys.stderr, flush=True)


names = {}
# 1. Latency: one file at a time, close -> "upload started" log line.
if "1" in STAGES:
    lat_dir = os.path.join(work, "latency")
    os.makedirs(lat_dir)
    log = os.path.join(work, "latency.log")
    w = start_watch(lat_dir, log)
    time.sleep(1.0)  # let the watch come up before measuring
    closed = {}
    base = ledger_count()
    for i in range(200):
        path = os.path.join(lat_dir, f"l{i:03}.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(4096))
        closed[path] = time.time()
        wait_ledger(base + i + 1, 30)
    stop(w)
    started = {}
    pat = re.compile(r"^(\S+)\s+INFO.*?upload started.*?path=(\S+)")
    for line in open(log):
        m = pat.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m and m.group(2) in closed and m.group(2) not in started:
            started[m.group(2)] = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
    lat = sorted((started[p] - closed[p]) * 1000 for p in started)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    report("close -> upload start, 200 files", f"median {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms",
           "median < 500 ms, p99 < 2 s")

# 2. Burst: 10,000 small files within 10 s.
if "2" in STAGES:
    burst = os.path.join(work, "burst")
    os.makedirs(burst)
    log = os.path.join(work, "burst.log")
    w = start_watch(burst, log)
    time.sleep(1.0)
    base = ledger_count()
    t0 = time.time()
    for i in range(10_000):
        with open(os.path.join(burst, f"b{i:05}.txt"), "wb") as f:
            f.write(f"burst {i}\n".encode())
    created = time.time() - t0
    peak = 0
    deadline = time.time() + 600
    while ledger_count() < base + 10_000:
        peak = max(peak, proc_status(w.pid, "VmHWM"))
        if time.time() > deadline:
            break
        time.sleep(0.1)
    total = time.time() - t0
    peak = max(peak, proc_status(w.pid, "VmHWM"))
    stop(w)
    names = {}
    with open(ledger) as f:
        for line in f:
            entry = json.loads(line)
            names[entry["sha256"]] = names.get(entry["sha256"], 0) + 1
    landed = ledger_count() - base
    dups = sum(n - 1 for n in names.values())
    report("10,000 files created in %.1f s" % created,
           f"{landed} uploads in {total:.1f} s ({landed / total:.0f}/s), {dups} duplicates, peak RSS {peak / 1024:.1f} MiB",
           "all exactly once")

# 3. Idle: a tree of 50,000 files, already uploaded, watched for 10 s.
if "3" in STAGES:
    tree = os.path.join(work, "tree")
    for d in range(100):
        sub = os.path.join(tree, f"d{d:03}")
        os.makedirs(sub)
        for i in range(500):
            with open(os.path.join(sub, f"f{i:03}.txt"), "wb") as f:
                f.write(b"x")
    log = os.path.join(work, "tree.log")
    base = ledger_count()
    w = start_watch(tree, log)
    wait_ledger(base + 50_000, 900)
    stop(w)
    w = start_watch(tree, log)  # a restart: everything journaled, nothing to do
    time.sleep(5)  # settle: the catch-up scan
    c0 = cpu_seconds(w.pid)
    time.sleep(10)
    cpu = (cpu_seconds(w.pid) - c0) / 10 * 100
    rss = proc_status(w.pid, "VmRSS")
    stop(w)
    report("idle watch, 50,000-file tree", f"CPU {cpu:.2f}%, RSS {rss / 1024:.1f} MiB", "CPU ~0, RSS < 40 MiB")

sandbox.send_signal(signal.SIGTERM)
sandbox.wait(timeout=30)
print()
print(f"| watch benchmark (loopback, {os.cpu_count()} cores) | measured | target |")
print("| --- | --- | --- |")
for name, value, target in results:
    print(f"| {name} | {value} | {target} |")
subprocess.run(["rm", "-rf", work])

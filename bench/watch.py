#!/usr/bin/env python3
"""Watched-folder benchmarks, against the sandbox on loopback, with the release `dropkey`:

1. latency from a file's close to its upload starting: median and p99 over 200 files
2. 10,000 small files created within 10 s: all uploaded exactly once, total time, peak RSS
3. an idle watch on a tree of 50,000 files: CPU and RSS
4. a big tree: 100,000 files of a few bytes (1,000,000 with BENCH_BIG=1), on tmpfs when there is
   one, watched with a `--discard` sandbox: the initial scan until all are uploaded (time, peak
   RSS), then 60 s idle (CPU, RSS), then a restart's catch-up scan and a periodic rescan of the
   journaled tree (time, peak RSS). Targets: peak RSS < 64 MiB, idle CPU < 1%.

Prints a table. Run from the repository root: python3 bench/watch.py (bench/watch.sh builds
first). BENCH_STAGES=4 runs only the big tree; BENCH_DATA_DIR puts its queue database there
(default: beside the other stages', on disk)."""
import atexit, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time
from datetime import datetime

# Every process started here, stopped however the run ends (SIGTERM unwinds through atexit).
started = []


def cleanup():
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(work, ignore_errors=True)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit("interrupted"))

DK = os.path.abspath("target/release/dropkey")
work = tempfile.mkdtemp(prefix="dropkey-watch-bench.")
env = dict(os.environ)
env["DROPKEY_SECRET_SANDBOX"] = "private_watch_bench_key"
env["DROPKEY_DATA_DIR"] = os.path.join(work, "data")

sandbox = subprocess.Popen([DK, "sandbox", "--listen", "127.0.0.1:0", "--root", os.path.join(work, "sb")],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
started.append(sandbox)
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
    p = subprocess.Popen([DK, "watch", "sandbox", folder], stdout=subprocess.DEVNULL,
                         stderr=open(log_path, "w"), env=e)
    started.append(p)
    return p


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
STAGES = set((os.environ.get("BENCH_STAGES") or "1234").replace(",", ""))


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



# 4. A big tree: initial scan, idle, rescans.
class LedgerTail:
    """Counts a growing ledger's lines without rereading it (a million lines)."""

    def __init__(self, path):
        self.path, self.offset, self.count = path, 0, 0

    def __call__(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        # Only complete lines: the sandbox may be mid-append.
        end = data.rfind(b"\n") + 1
        self.count += data.count(b"\n", 0, end)
        self.offset += end
        return self.count


SCAN_DONE = re.compile(r"scan of .* done: (\d+) files in ([\d.]+) s, (\d+) new or changed, "
                       r"at most (\d+) waiting at once")


def scan_lines(log_path):
    with open(log_path, errors="replace") as f:
        return [m.groups() for m in map(SCAN_DONE.search, f) if m]


def big_tree_stage():
    n = 1_000_000 if os.environ.get("BENCH_BIG") == "1" else 100_000
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    big = tempfile.mkdtemp(prefix="dropkey-watch-big.", dir=shm)
    data_parent = os.environ.get("BENCH_DATA_DIR") or work
    data = tempfile.mkdtemp(prefix="data-big.", dir=data_parent)
    sb = None
    try:
        tree = os.path.join(big, "tree")
        print(f"stage 4: creating {n:,} files in {tree}...", file=sys.stderr, flush=True)
        for i in range(n):
            if i % 1000 == 0:
                d = os.path.join(tree, f"d{i // 1000:04}")
                os.makedirs(d)
            with open(os.path.join(d, f"f{i:07}.txt"), "wb") as f:
                f.write(b"%d\n" % i)
        e = dict(env, DROPKEY_DATA_DIR=data, DROPKEY_LOG="dropkey=info")
        sb = subprocess.Popen([DK, "sandbox", "--listen", "127.0.0.1:0", "--root",
                               os.path.join(big, "sb"), "--discard"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e, text=True)
        started.append(sb)
        addr = json.loads(sb.stdout.readline())["listen"]
        count = LedgerTail(os.path.join(big, "sb", "ledger.jsonl"))

        def watch(scan_interval, log_path):
            config = os.path.join(big, f"config-{scan_interval}.toml")
            with open(config, "w") as f:
                f.write(f'[sandbox]\nlisten = "{addr}"\n[upload]\nconcurrency = 8\n'
                        f'[[watch]]\npath = "{tree}"\nprofile = "sandbox"\n')
                if scan_interval:
                    f.write(f"scan_interval = {scan_interval}\n")
            p = subprocess.Popen([DK, "watch"], stdout=subprocess.DEVNULL,
                                 stderr=open(log_path, "w"), env=dict(e, DROPKEY_CONFIG=config))
            started.append(p)
            return p

        # a. The initial scan of a tree nothing of which is uploaded yet.
        log_a = os.path.join(big, "initial.log")
        t0 = time.time()
        w = watch(None, log_a)
        deadline = t0 + 4 * 3600
        while count() < n:
            if time.time() > deadline or w.poll() is not None:
                raise SystemExit(f"stage 4: only {count()} of {n} uploads landed")
            time.sleep(0.2)
        total = time.time() - t0
        peak = proc_status(w.pid, "VmHWM")
        walked = scan_lines(log_a)
        walk_s = float(walked[0][1]) if walked else float("nan")
        report(f"initial scan of {n:,} files to all uploaded",
               f"{total:.1f} s ({n / total:.0f} files/s; the walk itself ended after {walk_s:.1f} s), "
               f"peak RSS {peak / 1024:.1f} MiB",
               "all uploaded, peak RSS < 64 MiB")
        results_big.append(("peak RSS, initial scan", peak / 1024))

        # b. Idle: everything uploaded, no events.
        time.sleep(5)
        c0, rss_max = cpu_seconds(w.pid), 0
        for _ in range(60):
            time.sleep(1)
            rss_max = max(rss_max, proc_status(w.pid, "VmRSS"))
        cpu = (cpu_seconds(w.pid) - c0) / 60 * 100
        stop(w)
        report(f"idle 60 s on the {n:,}-file tree", f"CPU {cpu:.2f}%, RSS up to {rss_max / 1024:.1f} MiB",
               "CPU < 1%, RSS < 64 MiB")
        results_big.append(("idle CPU %", cpu))
        results_big.append(("idle RSS", rss_max / 1024))

        # c. A restart (its catch-up scan) and a periodic rescan 10 s after that one ends: the
        # whole journaled tree compared again, nothing uploaded.
        log_c = os.path.join(big, "rescan.log")
        before = count()
        w = watch(10, log_c)
        deadline = time.time() + 4 * 3600
        while len(scan_lines(log_c)) < 2:
            if time.time() > deadline or w.poll() is not None:
                raise SystemExit("stage 4: the rescans did not finish")
            time.sleep(0.5)
        peak = proc_status(w.pid, "VmHWM")
        stop(w)
        scans = scan_lines(log_c)
        again = count() - before
        report(f"restart scan + periodic rescan of the journaled {n:,} files",
               f"{float(scans[0][1]):.1f} s and {float(scans[1][1]):.1f} s ({scans[0][2]} and {scans[1][2]} "
               f"new or changed), {again} uploaded again, peak RSS {peak / 1024:.1f} MiB",
               "nothing uploaded, peak RSS < 64 MiB")
        results_big.append(("peak RSS, rescans", peak / 1024))
        results_big.append(("uploaded again", again))
    finally:
        if sb is not None:
            sb.send_signal(signal.SIGTERM)
            sb.wait(timeout=30)
        shutil.rmtree(big, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


results_big = []
if "4" in STAGES:
    big_tree_stage()

sandbox.send_signal(signal.SIGTERM)
sandbox.wait(timeout=30)
print()
print(f"| watch benchmark (loopback, {os.cpu_count()} cores) | measured | target |")
print("| --- | --- | --- |")
for name, value, target in results:
    print(f"| {name} | {value} | {target} |")
if results_big:
    big = dict(results_big)
    checks = [
        ("peak RSS < 64 MiB (initial scan)", big["peak RSS, initial scan"] < 64),
        ("peak RSS < 64 MiB (rescans)", big["peak RSS, rescans"] < 64),
        ("idle CPU < 1%", big["idle CPU %"] < 1.0),
        ("idle RSS < 64 MiB", big["idle RSS"] < 64),
        ("nothing uploaded again by the rescans", big["uploaded again"] == 0),
    ]
    print()
    for name, ok in checks:
        print(f"{name}: {'met' if ok else 'NOT met'}")
    if not all(ok for _, ok in checks):
        sys.exit(1)

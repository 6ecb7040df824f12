"""The offline benchmark: see bench/offline.sh. Loopback only; every wait has a deadline."""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import queue

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
DK = os.path.join(TARGET, "release", "dropkey")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
OUTAGE = float(os.environ.get("BENCH_OUTAGE", "60"))
FILES = int(os.environ.get("BENCH_FILES", "100"))
DEADLINE = 300.0
TICK = os.sysconf("SC_CLK_TCK")


def lines(pipe, q):
    for line in iter(pipe.readline, ""):
        q.put(line.rstrip("\n"))
    q.put(None)


def wait_for(q, pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            sys.exit(f"timed out waiting for {what}")
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            sys.exit(f"the process ended while waiting for {what}")
        if pred(line):
            return line


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_sandbox(env, listen, root):
    with open(os.path.join(os.path.dirname(root), "sandbox.err"), "a") as err:
        p = subprocess.Popen(
            [DK, "sandbox", "--listen", listen, "--root", root],
            env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )
    first = p.stdout.readline()
    if not first:
        with open(os.path.join(os.path.dirname(root), "sandbox.err")) as f:
            sys.exit(f"the sandbox did not start: {f.read()}")
    return p, json.loads(first)["listen"]


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def one_run(n):
    work = tempfile.mkdtemp(prefix="dropkey-offline-")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DROPKEY_")}
        env["DROPKEY_SECRET_SANDBOX"] = "private_offline_bench_" + os.urandom(6).hex()
        env["DROPKEY_DATA_DIR"] = os.path.join(work, "data")
        env["DROPKEY_CONFIG"] = os.path.join(work, "config.toml")
        sroot = os.path.join(work, "sandbox")
        inbox = os.path.join(work, "in")
        os.makedirs(inbox)
        open(env["DROPKEY_CONFIG"], "w").close()
        sandbox, addr = start_sandbox(env, "127.0.0.1:0", sroot)
        with open(env["DROPKEY_CONFIG"], "w") as f:
            f.write(f'[sandbox]\nlisten = "{addr}"\n')
        watch = subprocess.Popen(
            [DK, "watch", "sandbox", inbox], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        out, err = queue.Queue(), queue.Queue()
        threading.Thread(target=lines, args=(watch.stdout, out), daemon=True).start()
        threading.Thread(target=lines, args=(watch.stderr, err), daemon=True).start()
        wait_for(err, lambda l: ": watching" in l, "the watch to start")

        stop(sandbox)
        went_down = time.monotonic()
        cpu0 = cpu_seconds(watch.pid)
        # The files arrive spread over the outage, like a scanner or an export would write them.
        spacing = OUTAGE * 0.8 / FILES
        for i in range(FILES):
            path = os.path.join(inbox, f"scan-{i:03}.txt")
            with open(path + ".part", "w") as f:
                f.write(f"page {i} " * 100)
            os.rename(path + ".part", path)
            time.sleep(spacing)
        offline_lines = 0
        while time.monotonic() - went_down < OUTAGE:
            try:
                line = err.get(timeout=max(0.0, OUTAGE - (time.monotonic() - went_down)))
                offline_lines += line is not None and line.startswith("offline — ")
            except queue.Empty:
                pass
        cpu_offline = cpu_seconds(watch.pid) - cpu0
        early = out.qsize()

        back_at = time.monotonic()
        sandbox, _ = start_sandbox(env, addr, sroot)
        ok = bad = 0
        while ok + bad < FILES:
            line = wait_for(out, lambda l: l.startswith("{"), "upload lines")
            if json.loads(line).get("ok"):
                ok += 1
            else:
                bad += 1
        resumed = time.monotonic() - back_at
        stop(watch)
        stop(sandbox)
        with open(os.path.join(sroot, "ledger.jsonl")) as f:
            names = [json.loads(l)["name"] for l in f if l.strip()]
        landed = [nm for nm in names if nm.startswith("scan-")]
        stems = {nm.split("_")[0].split(".")[0] for nm in landed}
        dups = len(landed) - len(stems)
        return {
            "run": n, "resume_s": resumed, "landed": len(stems), "duplicates": dups,
            "needs_attention": bad, "lines_before_return": early,
            "cpu_offline_s": cpu_offline, "cpu_offline_pct": 100 * cpu_offline / OUTAGE,
            "offline_status_lines": offline_lines,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    results = []
    for n in range(1, RUNS + 1):
        r = one_run(n)
        results.append(r)
        print(
            f"run {n}: all {r['landed']} landed {r['resume_s']:.2f} s after the sandbox returned; "
            f"duplicates {r['duplicates']}, needs attention {r['needs_attention']}, "
            f"CPU while offline {r['cpu_offline_s']:.2f} s in {OUTAGE:.0f} s ({r['cpu_offline_pct']:.2f}%), "
            f"{r['offline_status_lines']} offline status lines",
            flush=True,
        )
    med = lambda k: statistics.median(r[k] for r in results)
    print()
    print(f"| metric ({RUNS} runs, {FILES} files, {OUTAGE:.0f} s outage) | median | target |")
    print("|---|---|---|")
    print(f"| time from return until all landed | {med('resume_s'):.2f} s | < 10 s |")
    print(f"| duplicates | {max(r['duplicates'] for r in results)} (max) | 0 |")
    print(f"| needing attention | {max(r['needs_attention'] for r in results)} (max) | 0 |")
    print(f"| CPU of `dropkey watch` while offline | {med('cpu_offline_pct'):.2f}% of a core | near idle |")


if __name__ == "__main__":
    main()

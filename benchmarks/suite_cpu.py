"""Where the test suite's CPU goes: the README's test command (or any pytest arguments) run while
every process on the machine is sampled from /proc, its CPU put to the kind of process that spent
it. On a machine the suite keeps busy, its wall time is its CPU over the cores, so this table is
what a shorter suite has to take from.

Run: ``python benchmarks/suite_cpu.py`` (the whole suite, as ``.ci/run`` runs it) or
``python benchmarks/suite_cpu.py -- -m unit -n 2`` (other pytest arguments), with $TLCORE_DATA_DIR
set as for the tests. Run it alone: anything else running is counted in "the rest".

Last measured (2026-12-05, 2-core AMD EPYC VM, alone, the whole suite: 965 passed in 534 s):
538 s wall, 1,035 s of CPU busy on the machine, 1.92 of its 2 cores on average:

  pytest (its workers: in-process tests)           338 s   33%
  Chromium (renderers 212, GPU process 52, the rest 38)   302 s   29%
  the app's servers (python app.py)                145 s   14%
  fresh interpreters the tests start               134 s   13%
  torchrun's agents and ranks                       87 s    8%
  the rest (Playwright's driver, the machine)       20 s    2%

An earlier run the same: 533 s, 1,034 s of CPU. With OMP_WAIT_POLICY=PASSIVE: 537 s, 1,040 s.
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_COMMAND = ["-n", "2", "--dist", "loadgroup", "--hypothesis-profile=ci"]
HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (field 4, the parent's pid, is [1]; user and
    system ticks [11] and [12]; the start tick [19]). OSError once the process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, CPU ticks of its own (user + system), start tick)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                f = stat_fields(name)
            except OSError:
                continue
            out[int(name)] = (int(f[1]), int(f[11]) + int(f[12]), int(f[19]))
    return out


def _command(pid: int, procs: dict, seen: dict) -> str:
    """The process's command line, read once a process (a pid and its start tick)."""
    key = (pid, procs[pid][2])
    if key not in seen:
        try:
            seen[key] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            seen[key] = ""
    return seen[key]


def _kind(pid: int, procs: dict, run: int, commands: dict) -> str:
    """What spent this process's CPU: its own command line, else its ancestors' (a torchrun's ranks,
    the interpreters started under this pytest run)."""
    lineage, p = [], pid
    while p in procs and len(lineage) < 12:
        lineage.append(p)
        p = procs[p][0]
    cmd = _command(pid, procs, commands)
    if "--type=renderer" in cmd:
        return "Chromium: renderers"
    if "--type=gpu-process" in cmd:
        return "Chromium: GPU process"
    if "chromium" in cmd or "/proc/self/exe" in cmd:
        return "Chromium: browser and utilities"
    if "app.py" in cmd:
        return "the app's servers (python app.py)"
    if any("torch.distributed.run" in _command(a, procs, commands) for a in lineage):
        return "torchrun's agents and ranks"
    if "exec(eval(sys.stdin.readline()))" in cmd or pid == run:
        return "pytest (its workers: in-process tests)"
    if "playwright" in cmd or cmd.split(" ")[0].endswith("node"):
        return "Playwright's driver"
    if run in lineage[1:]:
        return "fresh interpreters the tests start"
    return "the rest of the machine"


def _busy_ticks() -> int:
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(v) - v[3] - v[4]  # all but idle and iowait


def sample(run: int, done: threading.Event, every: float = 0.4) -> collections.Counter:
    """CPU seconds by kind until ``done``: each process's own ticks since the last look (all of
    them for a process started since; a process that lives under ``every`` seconds is missed)."""
    start_tick = float(Path("/proc/uptime").read_text().split()[0]) * HZ  # now, in ticks since boot
    seen, kinds, commands, by = _processes(), {}, {}, collections.Counter()
    while not done.wait(every):
        now = _processes()
        for pid, (_, ticks, started) in now.items():
            old = seen.get(pid)
            spent = ticks - old[1] if old and old[2] == started else ticks if started >= start_tick else 0
            if spent:
                if (pid, started) not in kinds:
                    kinds[pid, started] = _kind(pid, now, run, commands)
                by[kinds[pid, started]] += spent / HZ
        seen = now
    return by


def main():
    if not Path("/proc/stat").exists():
        sys.exit("This benchmark reads /proc (Linux).")
    ap = argparse.ArgumentParser(usage="python benchmarks/suite_cpu.py [-- pytest arguments]")
    ap.add_argument("pytest_args", nargs="*", help="default: the README's test command's")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(args.pytest_args or README_COMMAND)]
    busy0, t0 = _busy_ticks(), time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    done = threading.Event()
    result: list[collections.Counter] = []
    sampler = threading.Thread(target=lambda: result.append(sample(proc.pid, done)))
    sampler.start()
    rc = proc.wait()
    done.set()
    sampler.join()
    wall, busy = time.monotonic() - t0, (_busy_ticks() - busy0) / HZ
    by = result[0]
    print(f"\n{' '.join(cmd[3:])}: exit {rc}, {wall:.0f} s wall, {busy:,.0f} s of CPU busy on the machine "
          f"({busy / wall:.2f} of {os.cpu_count()} cores on average)")
    total = sum(by.values())
    for kind, seconds in by.most_common():
        if seconds >= 0.5:
            print(f"  {kind:42s} {seconds:7.1f} s  {seconds / total:4.0%}")


if __name__ == "__main__":
    main()

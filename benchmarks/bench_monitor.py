"""RunMonitor latency (event written -> trait updated) and kernel CPU while idle-watching."""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._common import result, row
from mlwf_nb.widgets import RunMonitor

__all__ = ["ROWS", "bench_monitor_latency", "bench_monitor_idle_cpu"]


def _append(path: Path, event: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(event) + "\n")


@row("monitor_latency")
def bench_monitor_latency(quick: bool = True) -> dict:
    """Median seconds from an epoch line appended to events.jsonl to the ``history`` trait changing."""
    n = 10 if quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        monitor = RunMonitor(run)
        seen = threading.Event()
        monitor.observe(lambda _: seen.set(), names="history")
        lat = []
        for i in range(1, n + 1):
            seen.clear()
            t0 = time.perf_counter()
            _append(run / "events.jsonl", {"v": 1, "seq": i, "type": "epoch", "epoch": i,
                                           "metrics": {"loss": 1.0 / i, "accuracy": 0.5}})
            if seen.wait(5):
                lat.append(time.perf_counter() - t0)
            time.sleep(0.3)  # spaced like real epochs, so the rate bound does not hide the poll latency
        _append(run / "events.jsonl", {"v": 1, "seq": n + 1, "type": "run_finished", "state": "Success"})
        monitor.wait(10, show=False)
    med = statistics.median(lat)
    return result("monitor_latency", "median event -> trait latency", None, med, "s", "< 0.5 s", med < 0.5,
                  note=f"{len(lat)}/{n} events, max {max(lat):.3f} s, poll 0.1 s, <= 4 updates/s")


@row("monitor_idle_cpu")
def bench_monitor_idle_cpu(quick: bool = True) -> dict:
    """CPU (percent of one core) the kernel process spends while a monitor watches an idle run."""
    seconds = 3.0 if quick else 10.0
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        _append(run / "events.jsonl", {"v": 1, "seq": 1, "type": "run_started"})
        (run / "jobstate.log").write_text("1677911023 INTERNAL *** DAGMAN_STARTED 1.0 ***\n")
        monitor = RunMonitor(run)
        time.sleep(0.5)
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        pct = 100.0 * (time.process_time() - c0) / (time.perf_counter() - t0)
        monitor.stop()
    return result("monitor_idle_cpu", "kernel CPU idle-watching", None, pct, "% core", "< 5 %", pct < 5.0,
                  note=f"over {seconds:.0f} s, polling events.jsonl + jobstate.log every 0.1 s")


ROWS = [bench_monitor_latency, bench_monitor_idle_cpu]

if __name__ == "__main__":
    for fn in ROWS:
        print(fn(True))

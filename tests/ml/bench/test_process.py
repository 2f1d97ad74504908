"""ml.bench.process: timed commands, the workers' protocol, and a worker's own peak memory."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ml.bench.process import peak_rss_mb, read_spec, rss_mb, run_command, since_launch
from ml.core.errors import UserError


def test_peak_rss_is_the_workers_own_not_the_parents() -> None:
    """A worker started from a parent that once held 300 MB reports its own (small) peak."""
    code = (
        "import subprocess, sys\n"
        "block = bytearray(300 * 1024 * 1024)\n"
        "block[::4096] = b'x' * len(block[::4096])\n"  # touch every page: resident, not just mapped
        "del block\n"
        "child = 'from ml.bench.process import peak_rss_mb; print(peak_rss_mb())'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True,"
        " check=True).stdout.strip())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    child_peak = float(out.stdout.strip())
    assert 1 < child_peak < 250, child_peak
    assert peak_rss_mb() >= (rss_mb() or 0)


def test_run_command_times_logs_and_stops_at_the_timeout(tmp_path) -> None:
    ok = run_command([sys.executable, "-c", "print('hello')"], {}, tmp_path / "ok.out")
    assert ok["returncode"] == 0 and not ok["timed_out"] and ok["seconds"] > 0
    assert (tmp_path / "ok.out").read_text().strip() == "hello"
    slow = run_command(
        [sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path / "slow.out", 0.5
    )
    assert slow["timed_out"] and slow["returncode"] != 0 and slow["seconds"] < 30


def test_a_worker_reads_its_spec_and_knows_when_it_was_launched(tmp_path) -> None:
    spec = tmp_path / "w.spec.json"
    spec.write_text(f'{{"task": "t", "launched_at": {time.time() - 2}}}')
    read = read_spec([str(spec)])
    assert read["task"] == "t" and 2 <= since_launch(read) < 60
    with pytest.raises(UserError, match="usage"):
        read_spec([])

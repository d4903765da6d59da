"""Time from launching the app to its first visible top-level window, on an X display.

Usage (inside an X session or under ``xvfb-run``; needs ``xdotool``)::

    python packaging/startup_time.py [--runs N] [--timeout S] [--evict DIR] -- COMMAND [ARG ...]

e.g. ``xvfb-run -a -s "-screen 0 1600x1000x24 -noreset" python packaging/startup_time.py --runs 5 --
/usr/bin/fast3r-studio``. For each run the command is started, ``xdotool search --onlyvisible --pid
PID`` is polled every 20 ms until a window of that process is mapped and viewable, the elapsed wall
time is recorded, and the process (and only it) is terminated. Prints one line per run and the median,
as ``startup_s=...`` lines a script can grep.

``--evict DIR`` drops the files under DIR (e.g. /opt/fast3r-studio) from the page cache before each
run: a cold start, as the first launch after installing or rebooting, without touching the rest of the
system's cache. Only the standard library: it runs with any python3, outside the project's venv.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("startup_time")


def evict_from_page_cache(folder: Path) -> int:
    """Drop the cached pages of every file under ``folder`` (``posix_fadvise(DONTNEED)``).

    A "cold" start without dropping the whole system's cache (which would slow everything else on a
    shared machine). Clean pages only: files are read, never written here. Returns the bytes covered.
    """
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += os.fstat(fd).st_size
            finally:
                os.close(fd)
    return total


def time_to_window(cmd: list[str], timeout: float, env: dict[str, str]) -> float:
    """Seconds from ``Popen(cmd)`` to the first visible window of that process.

    Raises
    ------
    TimeoutError
        No visible window after ``timeout`` seconds (or the process exited first).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            found = subprocess.run(
                ["xdotool", "search", "--onlyvisible", "--pid", str(proc.pid)],
                capture_output=True,
                text=True,
                check=False,
            )
            if found.returncode == 0 and found.stdout.strip():
                return time.perf_counter() - t0
            if proc.poll() is not None:
                raise TimeoutError(f"the process exited with {proc.returncode} before showing a window")
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"no visible window after {timeout:.0f} s")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_display(timeout: float = 15.0) -> None:
    """Wait until the X server answers (xvfb-run may return control before Xvfb accepts clients)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        probe = subprocess.run(["xdotool", "getdisplaygeometry"], capture_output=True, check=False)
        if probe.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"no X display answered within {timeout:.0f} s (DISPLAY={os.environ.get('DISPLAY')})")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument(
        "--evict",
        type=Path,
        metavar="DIR",
        help="before each run, drop DIR's files from the page cache (a cold start from disk)",
    )
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    args = p.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        p.error("give the command after --")
    env = dict(os.environ)
    wait_for_display()
    times = []
    for i in range(args.runs):
        if args.evict is not None:
            evict_from_page_cache(args.evict)
        t = time_to_window(cmd, args.timeout, env)
        times.append(t)
        log.info("run %d: startup_s=%.2f", i + 1, t)
    log.info(
        "median startup_s=%.2f (min %.2f, max %.2f, %d runs)",
        statistics.median(times),
        min(times),
        max(times),
        len(times),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time from launch to a visible main window, in fresh processes.

Each run starts ``python -m app --model demo --screenshot FILE`` (an empty window: nothing to reconstruct,
it quits by itself 1.5 s after it is shown) and reads the app's own log line
"window visible X s after launch", measured from the process creation time to the first Expose event of
the window. Needs an X display: under no DISPLAY it starts Xvfb itself (QT_QPA_PLATFORM=xcb).

    python bench/startup.py [--runs 7] [--entry "fast3r-studio"]

``--entry`` times another launcher instead (e.g. an installed bundle); it gets the same arguments.
Prints the matmul probe before and after (the host's load swings) and writes results/startup.json.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_gflops, write_json

_VISIBLE = re.compile(r"window visible ([0-9.]+) s after launch")


def _start_xvfb() -> subprocess.Popen[bytes] | None:
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        sys.exit("no DISPLAY and no Xvfb: install xvfb or run under a display")
    display = ":93"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"])
    time.sleep(1.0)
    os.environ["DISPLAY"] = display
    return proc


def one_run(entry: list[str], shot: Path) -> float:
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    out = subprocess.run(
        [*entry, "-v", "--model", "demo", "--screenshot", str(shot)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = _VISIBLE.search(out.stderr)
    if m is None:
        raise RuntimeError(f"no 'window visible' line (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--entry", default=f"{shlex.quote(sys.executable)} -m app", help="launcher command")
    args = ap.parse_args()
    xvfb = _start_xvfb()
    try:
        probe_before = matmul_gflops()
        entry = shlex.split(args.entry)
        with tempfile.TemporaryDirectory() as tmp:
            times = [one_run(entry, Path(tmp) / f"shot{i}.png") for i in range(args.runs)]
        probe_after = matmul_gflops()
    finally:
        if xvfb is not None:
            xvfb.terminate()
    res = {
        "entry": args.entry,
        "runs": times,
        "first_s": times[0],
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "probe_gflops_before": probe_before,
        "probe_gflops_after": probe_after,
        "load_avg_1min": os.getloadavg()[0],
    }
    print(f"probe {probe_before:.0f} / {probe_after:.0f} GFLOP/s, load {res['load_avg_1min']:.2f}")
    print(
        f"window visible after launch: first {times[0]:.2f} s, median {res['median_s']:.2f} s, "
        f"min {res['min_s']:.2f} s, max {res['max_s']:.2f} s ({args.runs} runs)"
    )
    name = "startup" if args.entry.endswith("-m app") else "startup_" + re.sub(r"\W+", "_", args.entry)[-40:]
    print("wrote", write_json(name, res))


if __name__ == "__main__":
    main()

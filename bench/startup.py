"""Time from launch to a visible main window, and to the first sample result, in fresh processes.

Each run starts ``python -m app --model demo --screenshot FILE`` (an empty window: nothing to reconstruct,
it quits by itself 1.5 s after it is shown) and reads the app's own log line
"window visible X s after launch", measured from the process creation time to the first Expose event of
the window. Needs an X display: under no DISPLAY it starts Xvfb itself (QT_QPA_PLATFORM=xcb).

``--sample`` times what a first launch does instead: ``python -m app --screenshot FILE`` with fresh
settings opens the bundled sample with the demo model; the figure is the log line "first result shown
X s after launch" (the reconstruction is on screen). ``--no-preload`` sets ``FAST3R_PRELOAD=0`` (the
model then loads when the run starts, not while the window is built), for an A/B.

    python bench/startup.py [--runs 7] [--entry "fast3r-studio"]
    python bench/startup.py --sample --runs 5 [--no-preload]

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
_RESULT = re.compile(r"first result shown ([0-9.]+) s after launch")


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


def one_run(entry: list[str], shot: Path, sample: bool = False, preload: bool = True) -> float:
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    if not preload:
        env["FAST3R_PRELOAD"] = "0"
    args = [*entry, "-v", "--screenshot", str(shot)]
    if sample:  # fresh settings: the first launch opens the sample with the demo model
        env["FAST3R_CONFIG_DIR"] = str(shot.parent / f"config-{shot.stem}")
    else:
        args += ["--model", "demo"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    pattern = _RESULT if sample else _VISIBLE
    m = pattern.search(out.stderr)
    if m is None:
        raise RuntimeError(f"no {pattern.pattern!r} line (exit {out.returncode}):\n{out.stderr[-2000:]}")
    if sample:
        v = _VISIBLE.search(out.stderr)
        print(f"  window {float(v.group(1)) if v else float('nan'):.2f} s, result {float(m.group(1)):.2f} s")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--entry", default=f"{shlex.quote(sys.executable)} -m app", help="launcher command")
    ap.add_argument("--sample", action="store_true", help="time launch -> first sample result")
    ap.add_argument("--no-preload", action="store_true", help="with --sample: FAST3R_PRELOAD=0")
    args = ap.parse_args()
    xvfb = _start_xvfb()
    try:
        probe_before = matmul_gflops()
        entry = shlex.split(args.entry)
        with tempfile.TemporaryDirectory() as tmp:
            times = [
                one_run(entry, Path(tmp) / f"shot{i}.png", args.sample, not args.no_preload)
                for i in range(args.runs)
            ]
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
    what = "first sample result" if args.sample else "window visible"
    print(
        f"{what} after launch: first {times[0]:.2f} s, median {res['median_s']:.2f} s, "
        f"min {res['min_s']:.2f} s, max {res['max_s']:.2f} s ({args.runs} runs)"
    )
    name = "startup" if args.entry.endswith("-m app") else "startup_" + re.sub(r"\W+", "_", args.entry)[-40:]
    if args.sample:
        name += "_sample" + ("_no_preload" if args.no_preload else "")
    print("wrote", write_json(name, res))


if __name__ == "__main__":
    main()

"""Time from launch to a visible main window, and to the first sample result, in fresh processes.

Each run starts ``python -m app --model demo --screenshot FILE`` (an empty window: nothing to reconstruct,
it quits by itself 1.5 s after it is shown) and reads the app's own log line
"window visible X s after launch", measured from the process creation time to the first Expose event of
the window. Needs an X display: under no DISPLAY it starts Xvfb itself (QT_QPA_PLATFORM=xcb).

``--sample`` times what a first launch does instead: ``python -m app --screenshot FILE`` with fresh
settings opens the bundled sample with the demo model. The figure is launch to the first frame that
shows the result ("first frame with the result drawn X s after launch"), split from the app's log
lines into: window (launch to visible), torch's libraries (mapped on the worker while the window is
built), torch import, model load, run (the pipeline), hand-over (the confidence-sorted point sets, the
upload to the viewer, the views list) and the first frame after the result reached the viewer.
``--preload after|early|off`` chooses when the model loads (``FAST3R_PRELOAD``):
after the window is on screen (the default), before the window is built, or when the run starts;
several modes, comma-separated, alternate run by run (an A/B on a host whose load swings).
The last line (one per mode) sums up the best run, with the median and the host's load (1-minute
load average before/after, matmul probe before/after), for example:

    STARTUP sample best 4.21 s: window 1.10 | torch libraries 0.30 (done at 0.90) | torch import 1.05
    (done at 2.20) | model load 1.40 (done at 3.62) | run 1.50 (done at 5.14) | hand-over 0.30 | frame
    +0.12 s (median 4.80 s, 5 runs, preload after); host load 2.4/2.5 on 2 cores, probe 80/85 GFLOP/s

    python bench/startup.py [--runs 7] [--entry "fast3r-studio"]
    python bench/startup.py --sample --runs 5 [--preload after|early|off|after,early,off]

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_gflops, write_json

_VISIBLE = re.compile(r"window visible ([0-9.]+) s after launch")
_RESULT = re.compile(r"first result shown ([0-9.]+) s after launch")
_FRAME = re.compile(r"first frame with the result drawn ([0-9.]+) s after launch")


def _start_xvfb() -> subprocess.Popen[bytes] | None:
    """Start Xvfb on a free display number (``-displayfd``: never another user's server) when there is
    no DISPLAY; returns the process to stop."""
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        sys.exit("no DISPLAY and no Xvfb: install xvfb or run under a display")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        number = f.readline().strip().decode()
    if not number:
        proc.terminate()
        sys.exit("Xvfb did not start")
    os.environ["DISPLAY"] = f":{number}"
    return proc


#: Split of a --sample run: key -> (log line pattern, group index of the figure); "took" figures are
#: durations, "at" figures seconds after launch.
_SPLIT: dict[str, tuple[re.Pattern[str], int]] = {
    "window_at": (_VISIBLE, 1),
    "torch_libs_s": (re.compile(r"torch's libraries mapped in ([0-9.]+) s, ([0-9.]+) s after launch"), 1),
    "torch_libs_at": (re.compile(r"torch's libraries mapped in ([0-9.]+) s, ([0-9.]+) s after launch"), 2),
    "torch_import_s": (re.compile(r"torch imported in ([0-9.]+) s, ([0-9.]+) s after launch"), 1),
    "torch_imported_at": (re.compile(r"torch imported in ([0-9.]+) s, ([0-9.]+) s after launch"), 2),
    "model_load_s": (re.compile(r"model .+? loaded in ([0-9.]+) s, ([0-9.]+) s after launch"), 1),
    "model_loaded_at": (re.compile(r"model .+? loaded in ([0-9.]+) s, ([0-9.]+) s after launch"), 2),
    "run_s": (
        re.compile(r"run \d+: .* in ([0-9.]+) s \(model load [0-9.]+ s\), ([0-9.]+) s after launch"),
        1,
    ),
    "run_done_at": (
        re.compile(r"run \d+: .* in ([0-9.]+) s \(model load [0-9.]+ s\), ([0-9.]+) s after launch"),
        2,
    ),
    "result_at": (_RESULT, 1),
    "frame_at": (_FRAME, 1),
}


def one_run(entry: list[str], shot: Path, sample: bool = False, preload: str = "after") -> dict[str, float]:
    """One fresh process; returns its figures (``total_s``: the headline figure; NaN: no such line)."""
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    env["FAST3R_PRELOAD"] = {"after": "1", "early": "early", "off": "0"}[preload]
    args = [*entry, "-v", "--screenshot", str(shot)]
    if sample:  # fresh settings: the first launch opens the sample with the demo model
        env["FAST3R_CONFIG_DIR"] = str(shot.parent / f"config-{shot.stem}")
    else:
        args += ["--model", "demo"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    pattern = _RESULT if sample else _VISIBLE
    if pattern.search(out.stderr) is None:
        raise RuntimeError(f"no {pattern.pattern!r} line (exit {out.returncode}):\n{out.stderr[-2000:]}")
    if not sample:
        return {"total_s": float(_VISIBLE.search(out.stderr).group(1))}  # type: ignore[union-attr]
    fig: dict[str, float] = {}
    for key, (pat, group) in _SPLIT.items():
        m = pat.search(out.stderr)
        fig[key] = float(m.group(group)) if m else float("nan")
    # the frame line is missing when the screenshot grabbed before the canvas drew: the result then
    fig["total_s"] = fig["frame_at"] if fig["frame_at"] == fig["frame_at"] else fig["result_at"]
    fig["frame_after_result_s"] = fig["total_s"] - fig["result_at"]
    print("  " + _split_text(fig))
    return fig


def _split_text(f: dict[str, float]) -> str:
    return (
        f"{f['total_s']:.2f} s: window {f['window_at']:.2f} | torch libraries {f['torch_libs_s']:.2f} (done "
        f"at {f['torch_libs_at']:.2f}) | torch import {f['torch_import_s']:.2f} "
        f"(done at {f['torch_imported_at']:.2f}) | model load {f['model_load_s']:.2f} (done at "
        f"{f['model_loaded_at']:.2f}) | run {f['run_s']:.2f} (done at {f['run_done_at']:.2f}) | hand-over "
        f"{f['result_at'] - f['run_done_at']:.2f} | frame +{f['frame_after_result_s']:.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--entry", default=f"{shlex.quote(sys.executable)} -m app", help="launcher command")
    ap.add_argument("--sample", action="store_true", help="time launch -> first frame of the sample result")
    ap.add_argument(
        "--preload",
        default="after",
        help="with --sample: load the model after the window shows (after, the default), before it is "
        "built (early) or when the run starts (off); several, comma-separated, alternate run by run",
    )
    args = ap.parse_args()
    modes = args.preload.split(",") if args.sample else ["after"]
    if any(m not in ("after", "early", "off") for m in modes):
        ap.error("--preload takes after, early, off (comma-separated)")
    xvfb = _start_xvfb()
    try:
        load_before = os.getloadavg()[0]
        probe_before = matmul_gflops()
        entry = shlex.split(args.entry)
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):  # the modes alternate: the host's load swings hit them alike
                for mode in modes:
                    if len(modes) > 1:
                        print(f" preload {mode}:")
                    shot = Path(tmp) / f"shot-{mode}-{i}.png"
                    runs[mode].append(one_run(entry, shot, args.sample, mode))
        probe_after = matmul_gflops()
        load_after = os.getloadavg()[0]
    finally:
        if xvfb is not None:
            xvfb.terminate()
    host = (
        f"host load {load_before:.1f}/{load_after:.1f} on {os.cpu_count()} cores, "
        f"probe {probe_before:.0f}/{probe_after:.0f} GFLOP/s"
    )
    summary: list[str] = []
    res: dict[str, object] = {
        "entry": args.entry,
        "probe_gflops_before": probe_before,
        "probe_gflops_after": probe_after,
        "load_avg_1min": [load_before, load_after],
        "cpus": os.cpu_count(),
    }
    for mode, figs in runs.items():
        times = [r["total_s"] for r in figs]
        best = min(figs, key=lambda r: r["total_s"])
        entry_res: dict[str, object] = {
            "runs": times,
            "first_s": times[0],
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
        }
        if args.sample:
            entry_res.update(split=figs, best=best)
            res[mode] = entry_res
            summary.append(
                f"STARTUP sample best {_split_text(best)} (median {statistics.median(times):.2f} s, "
                f"{len(times)} runs, preload {mode}); {host}"
            )
        else:
            res.update(entry_res)
            summary.append(
                f"STARTUP window best {min(times):.2f} s (median {statistics.median(times):.2f} s, "
                f"first {times[0]:.2f} s, {len(times)} runs); {host}"
            )
    name = "startup" if args.entry.endswith("-m app") else "startup_" + re.sub(r"\W+", "_", args.entry)[-40:]
    if args.sample:
        name += "_sample" + ("" if modes == ["after"] else "_" + "_".join(modes))
    print("wrote", write_json(name, res))
    print("\n".join(summary))


if __name__ == "__main__":
    main()

"""The ``fast3r`` argument parser: one sub-parser per command, the argument types and shared options.

Each sub-parser sets ``handler`` to the command's function ``(args, console, progress) -> exit code``
(``commands_*.py``; ``fast3r train`` and ``fast3r eval`` come from :mod:`fast3r_core.train.cli_commands`).
Building the parser imports no heavy module (torch, the model, the exporters): the commands import
those when they run.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from fast3r_core import __version__
from fast3r_core.export.formats import FORMATS
from fast3r_core.logs import LOG_DIR_ENV, LOG_FILE_NAME
from fast3r_core.options import FRAME_METHODS

from .commands_edit import cmd_edit
from .commands_models import cmd_download, cmd_models
from .commands_project import cmd_export, cmd_info
from .commands_reconstruct import cmd_add, cmd_reconstruct
from .output_folder import DEFAULT_CONF_PERCENTILE, RECONSTRUCT_FORMATS, WRITE_ORDER, display_name

__all__ = ["EXPORT_FORMATS", "build_parser"]

#: Formats of ``export --format`` (keys of :data:`fast3r_core.export.FORMATS`).
EXPORT_FORMATS: tuple[str, ...] = tuple(FORMATS)
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


# ------------------------------------------------------------------------------------------------
# Argument types
# ------------------------------------------------------------------------------------------------
def _formats_arg(text: str) -> list[str]:
    """Parse ``--formats``: comma-separated names or "all", returned in writing order."""
    names: list[str] = []
    for part in text.replace(" ", "").lower().split(","):
        if not part:
            continue
        if part == "all":
            names.extend(RECONSTRUCT_FORMATS)
        elif part in RECONSTRUCT_FORMATS:
            names.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown format {part!r} (choose from {', '.join(sorted(RECONSTRUCT_FORMATS))} or all)"
            )
    if not names:
        raise argparse.ArgumentTypeError("no format given")
    return [f for f in WRITE_ORDER if f in names]  # writing order, no duplicates


_Number = TypeVar("_Number", int, float)


_EXCLUDE_EXAMPLES = {
    "reconstruct": "fast3r reconstruct photos/ -o out --exclude a.jpg b.jpg",
    "add": "fast3r add scene.f3r more/ -o bigger.f3r --exclude a.jpg b.jpg",
}


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose "INPUT is required" error says why when ``--exclude`` took the inputs.

    ``--exclude NAME [NAME ...]`` takes every word up to the next option, inputs included, so
    ``fast3r reconstruct --exclude a.jpg photos/ -o out`` leaves no input: the bare argparse message
    would not say that. Sub-parsers are made with the parent's class, so every command gets this.
    """

    _given: tuple[str, ...] = ()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._given = tuple(str(a) for a in args) if args is not None else ()
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:  # argparse's hook; prints usage and exits 2
        if "--exclude" in self._given and re.search(r"required:.*\bINPUT\b", message):
            example = _EXCLUDE_EXAMPLES.get(self.prog.split()[-1], _EXCLUDE_EXAMPLES["reconstruct"])
            message += (
                " (--exclude takes every name after it, the inputs too: put --exclude after the "
                f"inputs, e.g. '{example}')"
            )
        super().error(message)


def _parse_number(text: str, kind: type[_Number]) -> _Number:
    """``text`` as an ``int`` or a ``float``; an ArgumentTypeError that says which was expected."""
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def _percentile_arg(text: str) -> float:
    """Parse ``--conf-percentile``: a number in [0, 100)."""
    value = _parse_number(text, float)
    if not 0.0 <= value < 100.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 100), got {text}")
    return value


def _positive_int(text: str) -> int:
    """Parse an integer >= 1."""
    value = _parse_number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    """Parse a finite number > 0."""
    value = _parse_number(text, float)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _pass_size_arg(text: str) -> int:
    """Parse ``--max-views-per-pass``: 0 (one pass) or an integer >= 2."""
    value = _parse_number(text, int)
    if value < 0 or value == 1:
        raise argparse.ArgumentTypeError(f"must be 0 (one pass) or at least 2, got {value}")
    return value


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    """Device, precision, threads, seed, video sampling and licence acceptance (reconstruct, add)."""
    parser.add_argument("--device", type=_device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16", "int8"),
        default="auto",
        help="compute precision (int8: fast CPU mode, int8 linear layers; CPU only)",
    )
    parser.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image-index draw (0)")
    parser.add_argument(
        "--video-fps", type=_positive_float, default=1.0, metavar="F", help="video frames per second (1)"
    )
    parser.add_argument(
        "--video-max-frames",
        type=_positive_int,
        default=100,
        metavar="N",
        help="at most N frames per video (100)",
    )
    parser.add_argument(
        "--accept-license",
        action="store_true",
        help="accept the model's licence if it has to be downloaded first",
    )


def _add_input_args(parser: argparse.ArgumentParser) -> None:
    """Known intrinsics, masks, video frame choice and excluded inputs (reconstruct, add; issue 19)."""
    parser.add_argument(
        "--intrinsics",
        default="auto",
        metavar="{auto,estimate,FILE}",
        help="camera intrinsics: auto (EXIF focal when every photo of a camera has one, else estimated; "
        "default), estimate (ignore EXIF), or a file: JSON {fx, fy, cx, cy} in pixels of the original "
        "photo (or a list per image name), or a COLMAP cameras.txt/.bin with images.txt/.bin beside it",
    )
    parser.add_argument(
        "--masks",
        metavar="DIR",
        help="folder of masks, one per image: NAME.png or STEM.png, 0 = ignore the pixel, anything else "
        "= keep; masked pixels are in no point cloud, pose or export",
    )
    parser.add_argument(
        "--frames",
        choices=FRAME_METHODS,
        default="sharp",
        help="video frames: sharp (the sharpest frame of each time bin, near-duplicates dropped; "
        "default) or uniform (evenly spaced)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="leave these inputs out (file name or stem; video frames: frame_000123); the project "
        "records them. Put it after the inputs (it takes every name up to the next option)",
    )


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``--link-images`` and ``--overwrite`` (reconstruct, export)."""
    parser.add_argument(
        "--link-images",
        action="store_true",
        help="hard-link the photos into the COLMAP / Nerfstudio images/ folders instead of copying them "
        "(saves space; but a tool that edits those images in place then edits your originals)",
    )
    parser.add_argument(  # write into a folder that holds files of the user's
        "--overwrite",
        action="store_true",
        help="write into an output folder (or over a file) that this program did not write: files of the "
        "same names are replaced. Without it, only a new or empty folder or a previous output is used",
    )


def _add_chunking(parser: argparse.ArgumentParser) -> None:
    """``--max-views-per-pass`` and ``--anchors`` (reconstruct, add)."""
    parser.add_argument(
        "--max-views-per-pass",
        type=_pass_size_arg,
        metavar="N",
        help="at most N views (anchors included) in one forward pass; larger sets run in several passes "
        "that share anchor views. 0: always one pass (default: automatic from the free memory)",
    )
    parser.add_argument(
        "--anchors",
        type=_positive_int,
        metavar="M",
        help="anchor views shared by every pass of a chunked run, view 0 included "
        "(default: a third of a pass, 1 to 8)",
    )


def _device_arg(text: str) -> str:
    """Parse ``--device``: auto, cpu, mps, cuda or cuda:N (availability is checked when loading)."""
    value = text.strip().lower()
    if not _DEVICE_RE.match(value):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (auto, cpu, cuda, cuda:N or mps)")
    return value


# ------------------------------------------------------------------------------------------------
# Parser
# ------------------------------------------------------------------------------------------------
def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before and after the command name (``fast3r -v info X`` = ``fast3r info X -v``)."""

    def d(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("output and logging")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=d(0),
        help="show info messages on stderr (-vv: debug messages, also in the log file)",
    )
    g.add_argument("-q", "--quiet", action="store_true", default=d(False), help="print nothing but errors")
    g.add_argument(
        "--json",
        action="store_true",
        default=d(False),
        help="print the result as one JSON document on stdout (nothing else goes to stdout)",
    )
    g.add_argument(
        "--log-file",
        metavar="PATH",
        default=d(None),
        help=f"log file (default: ${LOG_DIR_ENV}/{LOG_FILE_NAME} or the user log folder)",
    )


def _add_percentile(parser: argparse.ArgumentParser) -> None:
    """Add ``--conf-percentile`` (shared by reconstruct and export)."""
    parser.add_argument(
        "--conf-percentile",
        metavar="P",
        type=_percentile_arg,
        default=DEFAULT_CONF_PERCENTILE,
        help="drop the lowest P %% of the points by confidence from point exports (keep the top "
        f"100-P %%); 0 keeps every point (default: {DEFAULT_CONF_PERCENTILE:g})",
    )


def _add_command(sub: Any, name: str, handler: Callable[..., int], **kwargs: Any) -> argparse.ArgumentParser:
    """Add the sub-parser of command ``name`` (``kwargs``: help, description) with the common options;
    ``handler(args, console, progress)`` runs the command and returns its exit code."""
    p: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    _add_common(p, suppress=True)
    p.set_defaults(handler=handler)
    return p


def _finite_float(text: str) -> float:
    """Parse a finite number (a coordinate)."""
    value = _parse_number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _add_edit_parser(sub: Any) -> None:
    """``fast3r edit``: its options, applied in the order of ``commands_edit.EDIT_ORDER``."""
    p = _add_command(
        sub,
        "edit",
        cmd_edit,
        help="set a project's scale, level, origin and crop (exports apply them)",
        description="Change the edits stored in a project: the model's output stays as it is, and every "
        "export (and 'fast3r info') follows the edits. The options apply in this order, whatever their "
        "order here: --clear, --origin, --scale-cameras, --scale, --level, --crop-box. Coordinates are "
        "in the project's current world (as exported); scaling and levelling are about the origin; "
        "after --level the world is Z up; --crop-box is in the world the other options leave.",
    )
    p.add_argument("project", metavar="PROJECT.f3r")
    p.add_argument(
        "-o", "--out", metavar="OUT.f3r", help="write the result here (default: update PROJECT.f3r in place)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file that is not a Fast3R Studio project (one is replaced anyway)",
    )
    p.add_argument("--clear", action="store_true", help="start from no edits (remove the stored ones first)")
    p.add_argument(
        "--origin",
        nargs=3,
        type=_finite_float,
        metavar=("X", "Y", "Z"),
        help="move the world's origin to this point (current world coordinates, before scaling)",
    )
    p.add_argument(
        "--scale-cameras",
        nargs=3,
        metavar=("I", "J", "DIST"),
        help="scale the world so that the centres of views I and J are DIST metres apart "
        "(1 unit = 1 m from then on)",
    )
    p.add_argument("--scale", type=_positive_float, metavar="FACTOR", help="multiply every length by FACTOR")
    p.add_argument(
        "--level",
        choices=("auto",),
        help="auto: rotate the world so that up is +Z (the cameras' mean up, refined by the floor or "
        "ground plane when there is one)",
    )
    p.add_argument(
        "--crop-box",
        nargs=6,
        type=_finite_float,
        metavar=("XMIN", "YMIN", "ZMIN", "XMAX", "YMAX", "ZMAX"),
        help="keep only the points in this axis-aligned box (coordinates after the other options)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``fast3r`` argument parser (one sub-parser per command)."""
    parser = _Parser(
        prog="fast3r",
        description="Fast3R Studio: unposed photos -> point cloud and camera poses (Fast3R, CVPR 2025).",
        epilog="Exit codes: 0 ok, 1 internal error, 2 bad input or usage, 130 cancelled. "
        "Run 'fast3r COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"fast3r {__version__}")
    _add_common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # reconstruct ------------------------------------------------------------------------------
    p = _add_command(
        sub,
        "reconstruct",
        cmd_reconstruct,
        help="photos or a video -> point cloud, cameras and exports",
        description="Run Fast3R on a folder of photos, image files or a video and write the outputs "
        "into --out: " + ", ".join(display_name(f) for f in RECONSTRUCT_FORMATS) + ". The outputs "
        "appear only when the run succeeded (a failed or cancelled run leaves nothing).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder, image files, or a video file")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument(
        "-m",
        "--model",
        default="demo",
        metavar="NAME_OR_PATH",
        help="registered model name (see 'fast3r models'), Hugging Face repo id, or a folder with "
        "config.json + model.safetensors (default: demo)",
    )
    p.add_argument("--size", type=int, choices=(512, 224), default=512, help="model resolution (default 512)")
    _add_run_args(p)
    _add_percentile(p)
    p.add_argument("--max-views", type=_positive_int, metavar="N", help="use at most N images, evenly spaced")
    p.add_argument(
        "--per-view-focal", action="store_true", help="estimate one focal length per view (mixed cameras)"
    )
    p.add_argument(
        "--formats",
        type=_formats_arg,
        default=list(WRITE_ORDER),
        metavar="LIST",
        help="comma-separated outputs among " + ",".join(RECONSTRUCT_FORMATS) + " (default: all)",
    )
    _add_chunking(p)
    _add_input_args(p)
    _add_output_flags(p)

    # add ----------------------------------------------------------------------------------------
    p = _add_command(
        sub,
        "add",
        cmd_add,
        help="add photos to a project (reconstructs only the new views)",
        description="Reconstruct new photos together with anchor views of an existing project, align "
        "them into its frame and write the project with the new views appended (the project records "
        "which views came from which run). The photos are used at the project's resolution.",
    )
    p.add_argument("project", metavar="PROJECT.f3r")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder, image files, or a video file")
    p.add_argument(
        "-o", "--out", metavar="OUT.f3r", help="write the result here (default: update PROJECT.f3r in place)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file that is not a Fast3R Studio project (one is replaced anyway)",
    )
    p.add_argument(
        "-m",
        "--model",
        metavar="NAME_OR_PATH",
        help="model to use (default: the project's model)",
    )
    _add_run_args(p)
    _add_chunking(p)
    _add_input_args(p)

    # export -------------------------------------------------------------------------------------
    p = _add_command(
        sub,
        "export",
        cmd_export,
        help="write a project's result in another format",
        description="Export a project file (.f3r, written by 'fast3r reconstruct' or the app). "
        "ply, glb and cameras write a file (into the folder when --out is an existing folder); "
        "colmap and nerfstudio write a folder.",
    )
    p.add_argument("project", metavar="PROJECT.f3r")
    p.add_argument(
        "-f",
        "--format",
        required=True,
        choices=EXPORT_FORMATS,
        help="; ".join(f"{key}: {fmt.description}" for key, fmt in FORMATS.items()),
    )
    p.add_argument("-o", "--out", required=True, metavar="PATH")
    _add_percentile(p)
    _add_output_flags(p)

    # edit ---------------------------------------------------------------------------------------
    _add_edit_parser(sub)

    # info ---------------------------------------------------------------------------------------
    p = _add_command(
        sub, "info", cmd_info, help="describe a project file", description="Describe a project file."
    )
    p.add_argument("project", metavar="PROJECT.f3r")

    # models -------------------------------------------------------------------------------------
    p = _add_command(
        sub,
        "models",
        cmd_models,
        help="list the registered models and whether they are available offline",
        description="List the registered models: name, size, licence, cached or not, and folder.",
    )

    # download -----------------------------------------------------------------------------------
    p = _add_command(
        sub,
        "download",
        cmd_download,
        help="download a model into the cache",
        description="Download a registered model (or a Hugging Face repo id) into the user cache. "
        "An interrupted download resumes.",
    )
    p.add_argument("name", metavar="NAME", help="model name (see 'fast3r models') or owner/repo")
    p.add_argument("--accept-license", action="store_true", help="accept the model's licence")

    # train / eval (the demo model's training and evaluation; torch is imported by the handlers) -----
    from fast3r_core.train.cli_commands import add_eval_parser, add_train_parser

    add_train_parser(sub, add_common=lambda q: _add_common(q, suppress=True))
    add_eval_parser(sub, add_common=lambda q: _add_common(q, suppress=True))
    return parser

"""``fast3r train ...`` and ``fast3r eval ...``: argparse sub-parsers for the main CLI.

Wire them into ``fast3r_core.cli.parser.build_parser``::

    from fast3r_core.train.cli_commands import add_eval_parser, add_train_parser
    add_train_parser(sub, add_common=lambda p: _add_common(p, suppress=True))
    add_eval_parser(sub, add_common=lambda p: _add_common(p, suppress=True))

Each sub-parser sets ``handler`` to a function ``(args, console, progress) -> exit code`` like the other
commands (``console`` needs ``out(str)`` and ``json(obj)``; ``progress`` is a ProgressEvent callback
or None). Nothing here imports torch at import time.

Commands
--------
``fast3r train cache --out DIR [--scenes N --seed S --size 224 --workers 2]``
    pre-render a training cache of synthetic scenes.
``fast3r train scenes --out DIR [--scenes N --seed S --size 224 --aspect square --format png]``
    write scene folders (images + gt.npz + cameras.json): held-out evaluation sets, sample scenes.
``fast3r train run --cache DIR[,DIR2] --out DIR [--recipe FILE] [options] [--resume]``
    train (or resume) a model; ``--recipe`` reads every training setting from a JSON file (the
    bundled demo model's is resources/models/demo/recipe.json); see ``--help`` for the options.
``fast3r train export --run DIR --dest DIR [--which best|last] [--fp32]``
    copy a run's model as a model folder (fp16 weights by default).
``fast3r eval --model M --scenes DIR [--size 224 --views N --seed 0]``
    pose metrics (RRA/RTA@5/15/30, mAA@30) of a model on scene folders, through the real pipeline.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fast3r_core.errors import InputError
from fast3r_core.progress import ProgressEvent

__all__ = ["add_eval_parser", "add_train_parser", "eval_main", "train_main"]

log = logging.getLogger(__name__)

AddCommon = Callable[[argparse.ArgumentParser], None] | None

_DEFAULT_MODEL = {
    "width": 192,
    "heads": 3,
    "enc_depth": 5,
    "dec_depth": 5,
    "dpt_layer_dims": [32, 64, 128, 256],
    "dpt_feature_dim": 48,
    "dpt_last_dim": 24,
}


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return n


def _hfov(value: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in value.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX in degrees, got {value!r}") from exc
    if not 1.0 <= lo <= hi < 179.0:
        raise argparse.ArgumentTypeError(f"field of view range {value!r} out of (1, 179)")
    return lo, hi


def _stages(value: str) -> list[tuple[float, int, int]]:
    """``0:112:32,0.6:224:12`` -> [(0.0, 112, 32), (0.6, 224, 12)]."""
    try:
        out = []
        for part in value.split(","):
            f, r, n = part.split(":")
            out.append((float(f), int(r), int(n)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"stages must look like 0:112:32,0.6:224:12, got {value!r}") from exc
    if not out or out[0][0] != 0.0:
        raise argparse.ArgumentTypeError("the first stage must start at 0")
    return out


def _emit(args: argparse.Namespace, console: Any, text: str, data: dict[str, Any]) -> None:
    if console is None:
        log.info("%s", text)
        return
    if getattr(args, "json", False):
        console.json(data)
    else:
        console.out(text)


def _report(progress: Any, stage: str, done: int, total: int, detail: str = "") -> None:
    if progress is not None:
        progress(ProgressEvent(stage, done, total, detail))


def _action(actions: Any, name: str, help_text: str, add_common: AddCommon) -> argparse.ArgumentParser:
    """The ``train`` action ``name``, with the common options when given."""
    a: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
    if add_common is not None:
        add_common(a)
    return a


def _add_scene_counts(a: argparse.ArgumentParser, *, scenes: int, size_help: str) -> None:
    """``--out DIR``, ``--scenes``, ``--views`` and ``--size`` of the scene-rendering actions."""
    a.add_argument("--out", required=True, metavar="DIR")
    a.add_argument("--scenes", type=_positive, default=scenes, help=f"number of scenes ({scenes})")
    a.add_argument("--views", type=_positive, default=8, help="views per scene (8)")
    a.add_argument("--size", type=_positive, default=224, help=f"{size_help} (224)")


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------
def add_train_parser(subparsers: Any, add_common: AddCommon = None) -> argparse.ArgumentParser:
    """Add ``train`` (with actions cache, scenes, run, export) to ``subparsers``; returns its parser."""
    p = subparsers.add_parser(
        "train",
        help="synthetic scenes and training of small Fast3R models (the bundled demo model)",
        description="Render synthetic training/evaluation scenes, train a small Fast3R with the paper's "
        "loss, and export it as a model folder.",
    )
    if add_common is not None:
        add_common(p)
    actions = p.add_subparsers(dest="train_action", metavar="ACTION", required=True)

    a = _action(actions, "cache", "pre-render a training cache of synthetic scenes", add_common)
    _add_scene_counts(a, scenes=2400, size_help="square image size")
    a.add_argument("--seed", type=int, default=0, help="scene seed stream (0)")
    a.add_argument("--workers", type=_positive, default=2, help="render processes (2)")
    a.set_defaults(handler=_cmd_cache)

    a = _action(actions, "scenes", "write synthetic scene folders with ground-truth cameras", add_common)
    _add_scene_counts(a, scenes=35, size_help="long image side")
    a.add_argument("--aspect", choices=("square", "landscape", "portrait", "random"), default="square")
    a.add_argument("--seed", type=int, default=None, help="scene seed stream (default: the held-out stream)")
    a.add_argument("--format", choices=("png", "jpg"), default="png", dest="image_format")
    a.add_argument("--kind", choices=("objects", "room", "random"), default="random", help="scene kind")
    a.add_argument(
        "--look",
        choices=("train", "unseen"),
        default="train",
        help="train: the training data's look; unseen: textures, palettes, light and camera paths that "
        "training never uses (generalisation test)",
    )
    a.add_argument(
        "--no-depth", action="store_true", help="do not store the depth maps (no confidence metrics in eval)"
    )
    a.add_argument(
        "--hfov",
        type=_hfov,
        default=(45.0, 75.0),
        metavar="MIN,MAX",
        help="horizontal field of view range in degrees (45,75); wider for 4:3 images that the 224 "
        "pipeline crops to a square",
    )
    a.set_defaults(handler=_cmd_scenes)

    a = _action(actions, "run", "train (or resume) a model on a scene cache", add_common)
    a.add_argument(
        "--cache",
        required=True,
        metavar="DIR[,DIR]",
        help="scene cache(s) ('fast3r train cache'); a stage reads the smallest cache its resolution divides",
    )
    a.add_argument(
        "--recipe",
        metavar="FILE",
        default=None,
        help="JSON file of training settings (TrainConfig fields); the options below are then ignored "
        "except --steps/--threads/--max-minutes/--seed when given",
    )
    a.add_argument("--out", required=True, metavar="DIR", help="run folder: logs, training state, models")
    a.add_argument(
        "--resume",
        action="store_true",
        help="continue from the training state in DIR/state/ (state.safetensors + state.json, data only; "
        "a run folder of an older version with DIR/checkpoint.pt resumes too)",
    )
    a.add_argument("--steps", type=_positive, default=None, help="training steps (2400)")
    a.add_argument("--lr", type=float, default=3e-4)
    a.add_argument("--warmup", type=int, default=100)
    a.add_argument(
        "--stages",
        type=_stages,
        default=_stages("0:112:32,0.6:224:12"),
        help="resolution schedule FRACTION:RES:IMAGES_PER_STEP,... (default 0:112:32,0.6:224:12)",
    )
    a.add_argument("--min-views", type=_positive, default=2)
    a.add_argument("--max-views", type=_positive, default=8)
    a.add_argument("--seed", type=int, default=None, help="seed (0)")
    a.add_argument("--threads", type=_positive, default=None, help="CPU threads (2)")
    a.add_argument("--eval-every", type=_positive, default=300)
    a.add_argument("--eval-scenes", type=int, default=14)
    a.add_argument(
        "--max-minutes", type=float, default=None, help="stop after this time (saving the training state)"
    )
    a.add_argument(
        "--model-json",
        default=json.dumps(_DEFAULT_MODEL),
        help="small_config() arguments as JSON (default: the demo model's)",
    )
    a.add_argument("--init", default=None, metavar="MODEL", help="start from these weights")
    a.set_defaults(handler=_cmd_run)

    a = _action(actions, "export", "export a run's model as a model folder", add_common)
    a.add_argument("--run", required=True, metavar="DIR", help="run folder of 'fast3r train run'")
    a.add_argument("--dest", required=True, metavar="DIR")
    a.add_argument("--which", choices=("best", "last"), default="best")
    a.add_argument("--fp32", action="store_true", help="keep fp32 weights (default fp16)")
    a.set_defaults(handler=_cmd_export)
    return p


def _cmd_cache(args: argparse.Namespace, console: Any = None, progress: Any = None) -> int:
    from .data import build_cache

    folder = build_cache(
        args.out, args.scenes, seed=args.seed, size=args.size, views=args.views, workers=args.workers
    )
    _emit(args, console, f"scene cache: {folder}", {"cache": str(folder), "scenes": args.scenes})
    return 0


def _cmd_scenes(args: argparse.Namespace, console: Any = None, progress: Any = None) -> int:
    from .data import scene_seed
    from .evaluate import EVAL_SEED
    from .synthetic import render_sample, save_scene_folder

    seed = EVAL_SEED if args.seed is None else args.seed
    aspect = None if args.aspect == "random" else args.aspect
    out = Path(args.out)
    folders = []
    for i in range(args.scenes):
        kind = None if args.kind == "random" else args.kind
        s = render_sample(
            scene_seed(seed, i),
            args.views,
            aspect=aspect,
            long_side=args.size,
            kind=kind,
            hfov_deg=args.hfov,
            look=args.look,
        )
        folders.append(
            save_scene_folder(
                s, out / f"scene_{i:03d}", with_depth=not args.no_depth, image_format=args.image_format
            )
        )
        _report(progress, "scenes", i + 1, args.scenes)
    _emit(args, console, f"{len(folders)} scenes in {out}", {"scenes": [str(f) for f in folders]})
    return 0


def _cmd_run(args: argparse.Namespace, console: Any = None, progress: Any = None) -> int:
    from .loop import TrainConfig, train

    if args.recipe:
        try:
            recipe = json.loads(Path(args.recipe).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the recipe {args.recipe}: {exc}") from exc
        known = set(TrainConfig.__dataclass_fields__) - {"out", "cache"}
        if not isinstance(recipe, dict) or set(recipe) - known:
            bad = sorted(set(recipe) - known) if isinstance(recipe, dict) else ["(not an object)"]
            raise InputError(f"the recipe {args.recipe} has unknown settings: {', '.join(bad)}")
        for name in ("steps", "threads", "max_minutes", "seed"):
            if getattr(args, name) is not None:
                recipe[name] = getattr(args, name)
        cfg = TrainConfig(out=args.out, cache=args.cache, **recipe)
    else:
        try:
            model_args = json.loads(args.model_json)
        except json.JSONDecodeError as exc:
            raise InputError(f"--model-json is not valid JSON: {exc}") from exc
        cfg = TrainConfig(
            out=args.out,
            cache=args.cache,
            steps=args.steps or 2400,
            lr=args.lr,
            warmup=args.warmup,
            stages=args.stages,
            min_views=args.min_views,
            max_views=args.max_views,
            seed=args.seed or 0,
            threads=args.threads or 2,
            eval_every=args.eval_every,
            eval_scenes=args.eval_scenes,
            max_minutes=args.max_minutes,
            model=model_args,
            init=args.init,
        )
    summary = train(
        cfg,
        resume=args.resume,
        on_log=lambda row: _report(progress, "train", int(row["step"]), cfg.steps, f"loss {row['loss']:.4f}"),
    )
    _emit(
        args,
        console,
        f"trained {summary['steps']} steps in {summary['seconds']:.0f} s -> {args.out}",
        summary,
    )
    return 0


def _cmd_export(args: argparse.Namespace, console: Any = None, progress: Any = None) -> int:
    from fast3r_core.weights import load_model

    from .loop import export_model

    src = Path(args.run) / args.which
    model = load_model(src, device="cpu")
    dest = export_model(model, args.dest, fp16=not args.fp32)
    _emit(args, console, f"exported {src} -> {dest}", {"source": str(src), "dest": str(dest)})
    return 0


# ------------------------------------------------------------------------------------------------
# eval
# ------------------------------------------------------------------------------------------------
def add_eval_parser(subparsers: Any, add_common: AddCommon = None) -> argparse.ArgumentParser:
    """Add ``eval --model M --scenes DIR`` to ``subparsers``; returns its parser."""
    p = subparsers.add_parser(
        "eval",
        help="camera-pose metrics of a model on scene folders with known cameras",
        description="Run the reconstruction pipeline on every scene folder (images + gt.npz or "
        "cameras.json, e.g. from 'fast3r train scenes') and report RRA/RTA@5/15/30 and mAA@30 "
        "(pairwise relative poses, averaged over scenes). Scene k uses 2 + k mod 7 views unless --views.",
    )
    if add_common is not None:
        add_common(p)
    p.add_argument("-m", "--model", default="demo", metavar="NAME_OR_PATH", help="model (default: demo)")
    p.add_argument("--scenes", required=True, metavar="DIR", help="a scene folder or a folder of them")
    p.add_argument("--size", type=int, choices=(224, 512), default=224, help="model resolution (224)")
    p.add_argument("--views", type=_positive, default=None, help="views per scene (default 2..8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image-index draw (0)")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads")
    p.add_argument("--report", metavar="FILE", default=None, help="also write the per-scene results (JSON)")
    p.set_defaults(handler=_cmd_eval)
    return p


def _cmd_eval(args: argparse.Namespace, console: Any = None, progress: Any = None) -> int:
    from fast3r_core.inference import cpu_threads
    from fast3r_core.weights import load_model

    from .evaluate import evaluate_scenes, find_scene_folders

    folders = find_scene_folders(args.scenes)  # fail fast, before loading the model
    model = load_model(args.model, device="cpu")
    with cpu_threads(args.threads):
        rep = evaluate_scenes(
            model,
            folders,
            size=args.size,
            num_views=args.views,
            seed=args.seed,
            progress=lambda d, t: _report(progress, "eval", d, t),
        )
    data = {"model": args.model, "scenes": len(folders), "metrics": rep.metrics, "per_scene": rep.per_scene}
    if args.report:
        Path(args.report).write_text(json.dumps(data, indent=1), encoding="utf-8")
    _emit(args, console, f"{args.model}: {rep.summary()}", data)
    return 0


# ------------------------------------------------------------------------------------------------
# Stand-alone entry points (before the main CLI wires the commands)
# ------------------------------------------------------------------------------------------------
def _main(add: Callable[..., argparse.ArgumentParser], name: str, argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog=f"fast3r-{name}")
    sub = parser.add_subparsers(dest="command", required=True)
    add(sub)
    args = parser.parse_args([name, *(argv or [])])

    class _Console:
        def out(self, text: str) -> None:
            log.warning("%s", text)

        def json(self, data: Any) -> None:
            log.warning("%s", json.dumps(data, default=str))

    return int(args.handler(args, _Console(), None))


def train_main(argv: list[str] | None = None) -> int:
    """``fast3r train`` without the main CLI: ``train_main(["run", "--cache", ...])``."""
    return _main(add_train_parser, "train", argv)


def eval_main(argv: list[str] | None = None) -> int:
    """``fast3r eval`` without the main CLI: ``eval_main(["--model", "demo", "--scenes", DIR])``."""
    return _main(add_eval_parser, "eval", argv)

"""``fast3r models`` (the model registry and what is cached) and ``fast3r download`` (fetch a model)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .console import Console, Progress, fmt_bytes
from .exit_codes import EXIT_OK

__all__ = ["cmd_download", "cmd_models"]

log = logging.getLogger(__name__)


def _architecture_of(folder: Path | None) -> str | None:
    """Depths and widths from a local model folder's config.json (no torch), or None."""
    if folder is None:
        return None
    from fast3r_core.errors import ConfigError
    from fast3r_core.model.config import Fast3RConfig

    try:
        return Fast3RConfig.from_json(Path(folder) / "config.json").describe()
    except ConfigError as exc:
        log.warning("Cannot read the config of %s: %s", folder, exc)
        return None


def cmd_models(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    """``fast3r models``: the registry with size, licence, local state and folder."""
    from fast3r_core import weights

    rows: list[dict[str, Any]] = []
    for st in weights.list_models():
        info = st.info
        if st.available:
            size = st.size_on_disk
            state = "bundled" if st.bundled else "yes"
        else:
            size = info.approx_size_bytes or 0
            state = f"partial ({fmt_bytes(st.partial_bytes)})" if st.partial_bytes else "no"
        rows.append(
            {
                "name": info.name,
                "size_bytes": size or None,
                "license": info.license_name,
                "license_url": info.license_url,
                "requires_license_acceptance": info.requires_license_acceptance,
                "cached": st.available,
                "state": state,
                "path": st.local_path,
                "repo_id": info.repo_id,
                "description": info.description,
                "architecture": _architecture_of(st.local_path),
            }
        )
    if console.json_mode:
        console.json({"command": "models", "cache_dir": weights.models_cache_dir(), "models": rows})
        return EXIT_OK
    table = [("NAME", "SIZE", "LICENCE", "CACHED", "PATH")]
    for r in rows:
        size_text = "?" if r["size_bytes"] is None else fmt_bytes(r["size_bytes"])
        if not r["cached"] and r["size_bytes"]:
            size_text = "~" + size_text
        table.append((r["name"], size_text, r["license"], r["state"], str(r["path"] or "-")))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        console.out("  ".join([*cells, row[4]]))
        arch = next((r["architecture"] for r in rows if r["name"] == row[0]), None)
        if arch:
            console.out(f"  {arch}")
    console.out(f"Cache folder: {weights.models_cache_dir()}")
    return EXIT_OK


def cmd_download(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    """``fast3r download``: fetch a model into the cache (needs --accept-license when it says so)."""
    from fast3r_core import weights

    folder = weights.download_model(args.name, accept_license=args.accept_license, progress=progress)
    progress.close()
    if console.json_mode:
        console.json({"command": "download", "name": args.name, "path": Path(folder)})
    else:
        console.out(f"{args.name} is ready in {folder}")
    return EXIT_OK

"""Checks before a run (fast3r_core.preflight), the sky-less copy for exports and the shared log file."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from fast3r_core import preflight
from fast3r_core.chunking import plan_passes
from fast3r_core.forward_memory import estimate_peak_memory
from fast3r_core.images import resize_crop_geometry
from fast3r_core.logs import LOG_DIR_ENV, LOG_FILE_NAME, default_log_path, open_log_file
from fast3r_core.model.config import Fast3RConfig
from fast3r_core.preflight import (
    MemoryCheck,
    estimate_memory,
    estimate_run_memory,
    headers_cached,
    image_sizes,
    license_to_accept,
    model_config,
)
from fast3r_core.sky import sky_pixel_masks, without_sky
from tests.core.recon_factory import make_synthetic_reconstruction
from tests.tiny import make_tiny_model, write_views

GIB = 1024**3


def _shape(size: int, w: int = 128, h: int = 96) -> tuple[int, int]:
    """(H, W) of a w x h photo at model resolution ``size``."""
    ow, oh = resize_crop_geometry(w, h, size).output_size
    return (oh, ow)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def cfg(tiny_model: Path) -> Fast3RConfig:
    return Fast3RConfig.from_json(tiny_model / "config.json")


# -- memory -------------------------------------------------------------------------------------------
def test_one_pass_estimate_is_the_peak_of_all_views(cfg: Fast3RConfig) -> None:
    sizes = [(128, 96)] * 4  # (width, height): 512 x 384 at 512 px
    check = estimate_run_memory(cfg, sizes, 512, available=64 * GIB)
    assert check is not None and check.n_views == 4 and check.passes == 1 and check.fits
    assert check.need == estimate_peak_memory(cfg, [_shape(512)] * 4).total
    assert check.need_224 == estimate_peak_memory(cfg, [_shape(224)] * 4).total < check.need
    assert estimate_run_memory(cfg, sizes, 224, available=GIB).need_224 is None
    # max_views keeps the first views; nothing usable: no estimate
    assert estimate_run_memory(cfg, sizes, 512, max_views=2, available=GIB).n_views == 2
    assert estimate_run_memory(cfg, [], 512, available=GIB) is None


@pytest.mark.parametrize("per_pass", [2, 3, 5])
def test_fixed_passes_follow_the_core_plan(cfg: Fast3RConfig, per_pass: int) -> None:
    """The pass count is the chunk planner's, not a second copy of its arithmetic."""
    sizes = [(128, 96)] * 9
    check = estimate_run_memory(cfg, sizes, 224, max_views_per_pass=per_pass, available=64 * GIB)
    plan = plan_passes([_shape(224)] * 9, cfg, max_views_per_pass=per_pass)
    assert check is not None and check.passes == len(plan.passes) > 1
    largest = max(len(p) for p in plan.passes)
    expected = estimate_peak_memory(cfg, [_shape(224)] * largest, encoder_chunk=1, head_chunk=1)
    assert check.need == expected.total
    assert f"in {check.passes} passes" in check.describe()


def test_automatic_passes_only_when_one_pass_does_not_fit(cfg: Fast3RConfig) -> None:
    from fast3r_core.chunking.plan import BUDGET_FRACTION, host_output_bytes

    sizes = [(128, 96)] * 6
    shapes = [_shape(512)] * 6
    one = estimate_peak_memory(cfg, shapes).total
    roomy = estimate_run_memory(cfg, sizes, 512, max_views_per_pass=None, available=one + 1)
    assert roomy is not None and roomy.passes == 1 and roomy.need == one
    # room for a pass of 3 views (after the weights and every view's outputs), not for all 6
    three = estimate_peak_memory(cfg, shapes[:3], encoder_chunk=1, head_chunk=1)
    free = (
        three.weights + int((three.total - three.weights + host_output_bytes(shapes)) / BUDGET_FRACTION) + 1
    )
    assert free < one
    tight = estimate_run_memory(cfg, sizes, 512, max_views_per_pass=None, available=free)
    plan = plan_passes(shapes, cfg, available=free - three.weights)
    assert tight is not None and tight.passes == len(plan.passes) > 1 and tight.fits
    # the single-pass mode never plans passes, and says it will not fit
    single = estimate_run_memory(cfg, sizes, 512, max_views_per_pass=0, available=free)
    assert single is not None and single.passes == 1 and single.need == one and not single.fits
    assert "At 224 px" in single.describe()


def test_int8_counts_the_weight_copy(cfg: Fast3RConfig) -> None:
    fp32 = estimate_run_memory(cfg, [(128, 96)] * 2, 224, available=GIB)
    int8 = estimate_run_memory(cfg, [(128, 96)] * 2, 224, int8=True, available=GIB)
    assert fp32 is not None and int8 is not None and int8.need > fp32.need


def test_memory_check_describes_itself() -> None:
    check = MemoryCheck(n_views=3, size=512, need=3 * GIB, available=2 * GIB, fits=False, need_224=GIB)
    assert check.describe() == (
        "3 views at 512 px need about 3.0 GiB; 2.0 GiB is available. At 224 px they would need about 1.0 GiB."
    )


def test_estimate_from_files_and_the_model_folder(tiny_model: Path, tmp_path: Path) -> None:
    write_views(tmp_path / "scene", 3)
    check = estimate_memory([str(tmp_path / "scene")], str(tiny_model), 224)
    assert check is not None and check.n_views == 3 and check.size == 224
    assert estimate_memory([str(tmp_path / "scene")], "no-such-model-name", 224) is None
    assert estimate_memory([str(tmp_path / "missing")], str(tiny_model), 224) is None
    assert model_config(str(tiny_model)) is not None and model_config("no-such-model-name") is None


def test_image_headers_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_views(tmp_path / "scene", 2, size=(120, 90))
    (tmp_path / "scene" / "broken.png").write_bytes(b"not an image")
    inputs = [str(tmp_path / "scene")]
    assert not headers_cached(inputs)
    assert image_sizes(inputs) == [(120, 90), (120, 90)]  # the unreadable file is left out
    assert headers_cached(inputs)
    reads: list[Path] = []
    real = preflight._read_header
    monkeypatch.setattr(preflight, "_read_header", lambda p: reads.append(p) or real(p))
    assert image_sizes(inputs) == [(120, 90), (120, 90)] and reads == []
    # a changed file is read again
    st = paths[0].stat()
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not headers_cached(inputs)
    assert image_sizes(inputs) == [(120, 90), (120, 90)] and reads == [paths[0]]
    assert headers_cached([str(tmp_path / "missing")])  # nothing to read


# -- licence ------------------------------------------------------------------------------------------
def test_license_to_accept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fast3r_core.weights import CACHE_ENV, MODELS

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))  # nothing downloaded
    licensed = next(n for n, i in MODELS.items() if i.requires_license_acceptance)
    assert license_to_accept(licensed) is MODELS[licensed]
    assert license_to_accept(licensed, accepted=True) is None
    assert license_to_accept("demo") is None  # no acceptance needed
    assert license_to_accept("someone/some-repo") is None and license_to_accept("/a/folder") is None


# -- sky ----------------------------------------------------------------------------------------------
def test_without_sky_gives_sky_pixels_nan_confidence() -> None:
    base = make_synthetic_reconstruction(2)
    colors = []
    for c in base.colors:
        img = np.zeros_like(np.asarray(c))
        img[: img.shape[0] // 3] = (110, 170, 235)  # a smooth blue band along the top
        colors.append(img)
    rec = dataclasses.replace(base, colors=tuple(colors))
    out = without_sky(rec)
    masks = sky_pixel_masks(rec)
    assert any(m.any() for m in masks)
    for v, m in enumerate(masks):
        assert out.conf[v].dtype == np.float32 and out.conf[v].shape == rec.conf[v].shape
        assert np.isnan(out.conf[v][m]).all() and np.isnan(out.conf_local[v][m]).all()
        np.testing.assert_array_equal(out.conf[v][~m], rec.conf[v][~m])
    for a, b in zip(out.pts3d, rec.pts3d, strict=True):
        np.testing.assert_array_equal(a, b)  # the points are unchanged


# -- log file -----------------------------------------------------------------------------------------
def test_log_file_path_and_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "logs"))
    assert default_log_path() == tmp_path / "logs" / LOG_FILE_NAME
    handler, path, problem = open_log_file(level=logging.DEBUG)
    assert handler is not None and path == default_log_path() and problem == ""
    assert handler.level == logging.DEBUG and path.parent.is_dir()
    handler.close()
    blocker = tmp_path / "file"
    blocker.write_text("")
    handler, path, problem = open_log_file(blocker / "x.log")  # its folder is a file
    assert handler is None and str(path) in problem

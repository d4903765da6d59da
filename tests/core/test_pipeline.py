"""reconstruct(): images -> model -> poses -> Reconstruction, on small inputs with the parity model."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fast3r_core
from fast3r_core.errors import Cancelled, NoImagesError
from fast3r_core.pipeline import ReconstructOptions, RunReport, reconstruct

from .weights_by_rule import write_model_folder

PARITY = Path(__file__).resolve().parents[1] / "data" / "parity"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    folder = write_model_folder(PARITY / "model_small", tmp_path_factory.mktemp("model"))
    return fast3r_core.load_model(folder, device="cpu")


def _photo(path, w, h, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 // w), (yy * 255 // h), rng.integers(0, 255, (h, w))], -1).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def test_reconstruct_folder(small_model, tmp_path):
    for i in range(3):
        _photo(tmp_path / f"img{i}.png", 320, 240, i)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    events = []
    rep = RunReport()
    rec = reconstruct(tmp_path, small_model, ReconstructOptions(size=224), events.append, run_report=rep)
    assert rec.n_views == 3
    assert [s.path.name for s in rep.skipped] == ["broken.jpg"]
    assert rec.view_shape(0) == (224, 224)
    assert rec.model_name == small_model.name and rec.model_name.startswith("model")  # the folder name
    assert rec.cam_to_world.shape == (3, 4, 4) and rec.pose_ok.dtype == bool
    np.testing.assert_allclose(rec.cam_to_world[:, 3], [[0, 0, 0, 1]] * 3)
    stages = {e.stage for e in events}
    assert {"images", "encode", "fuse", "heads", "poses"} <= stages
    # intrinsics: the 320x240 photo was resized to 299x224 (short side 224), then centre-cropped
    k, ko = rec.intrinsics[0], rec.intrinsics_original[0]
    assert tuple(rec.resized_sizes[0]) == (299, 224) and tuple(rec.crop_boxes[0]) == (37, 0, 261, 224)
    sx, sy = 299 / 320, 224 / 240
    assert k[0, 2] == 112 and k[1, 2] == 112
    np.testing.assert_allclose(ko[[0, 1], [0, 1]], [k[0, 0] / sx, k[1, 1] / sy], rtol=1e-9)
    np.testing.assert_allclose(ko[:2, 2], [(112 + 37.5) / sx - 0.5, 112.5 / sy - 0.5], rtol=1e-9)
    assert tuple(rec.original_sizes[0]) == (320, 240)
    assert rec.colors[0].dtype == np.uint8 and rec.colors[0].shape == (224, 224, 3)
    assert set(rec.timings) >= {"images", "model", "poses", "total"}


def test_reconstruct_mixed_orientations_at_512(small_model, tmp_path):
    _photo(tmp_path / "a.png", 320, 240, 0)
    _photo(tmp_path / "b.png", 240, 320, 1)
    rec = reconstruct(tmp_path, small_model, ReconstructOptions(size=512))
    assert rec.view_shape(0) == (384, 512) and rec.view_shape(1) == (512, 384)
    assert rec.pts3d[1].shape == (512, 384, 3)
    path = fast3r_core.save_project(rec, tmp_path / "p.f3r")
    back = fast3r_core.load_project(path)
    assert all(np.array_equal(a, b) for a, b in zip(rec.pts3d, back.pts3d, strict=True))


def test_same_input_same_output_and_seed(small_model, tmp_path):
    for i in range(3):
        _photo(tmp_path / f"{i}.png", 200, 150, i)
    a = reconstruct(tmp_path, small_model, ReconstructOptions(size=224))
    b = reconstruct(tmp_path, small_model, ReconstructOptions(size=224))
    assert np.array_equal(a.pts3d[2], b.pts3d[2]) and np.array_equal(a.cam_to_world, b.cam_to_world)
    ids = (0, 7, 3)
    c = reconstruct(tmp_path, small_model, ReconstructOptions(size=224, image_ids=ids))
    assert c.options["image_ids"] == list(ids)
    assert not np.array_equal(a.pts3d[2], c.pts3d[2])


def test_max_views_and_errors(small_model, tmp_path):
    for i in range(5):
        _photo(tmp_path / f"{i}.png", 160, 120, i)
    rec = reconstruct(tmp_path, small_model, ReconstructOptions(size=224, max_views=3))
    assert [p.rsplit("/", 1)[-1] for p in rec.image_paths] == ["0.png", "2.png", "4.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NoImagesError):
        reconstruct(empty, small_model)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        reconstruct(tmp_path, small_model, ReconstructOptions(size=224), cancel=cancel)

"""Model registry, download (with a fake Hub), checkpoint loading and saving (fast3r_core.weights)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import huggingface_hub
import huggingface_hub.file_download
import numpy as np
import pytest
import torch
from huggingface_hub import HfFileMetadata, constants
from huggingface_hub.errors import OfflineModeIsEnabled
from safetensors.numpy import save_file

import fast3r_core
from fast3r_core import weights
from fast3r_core.errors import (
    Cancelled,
    CheckpointError,
    ConfigError,
    DownloadError,
    InputError,
    LicenseNotAcceptedError,
    ModelNotAvailableError,
)
from fast3r_core.progress import ProgressEvent
from fast3r_core.weights import checkpoint, registry

from .weights_by_rule import read_keys, weights_by_rule, write_model_folder

PARITY = Path(__file__).resolve().parents[1] / "data" / "parity"
CASE = PARITY / "model_small"
PUBLISHED = "jedyang97/Fast3R_ViT_Large_512"
REAL_RESOURCES_DIR = weights.resources_dir  # the autouse fixture replaces it


# ------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Any Hub access fails loudly unless a test installs a fake; the cache is per test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("this test tried to reach the network")

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", refuse)
    monkeypatch.setattr(huggingface_hub.file_download, "http_get", refuse)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    cache_root = tmp_path / "cache-root"
    monkeypatch.setenv(weights.CACHE_ENV, str(cache_root))
    # no bundled demo model unless a test puts one there
    monkeypatch.setattr(registry, "resources_dir", lambda: tmp_path / "resources")
    return cache_root / "models"


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config.json + model.safetensors of the model_small parity case (weights by rule)."""
    return write_model_folder(CASE, tmp_path_factory.mktemp("model_small"))


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return weights_by_rule(CASE / "keys.txt", 0)


def _copy_config(dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CASE / "config.json", dst / "config.json")
    return dst


def _write_safetensors(folder: Path, tensors: dict[str, np.ndarray]) -> Path:
    _copy_config(folder)
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def _assert_weights(model: torch.nn.Module, reference: dict[str, np.ndarray]) -> None:
    sd = model.state_dict()
    assert set(sd) == set(reference)
    for k, v in reference.items():
        np.testing.assert_array_equal(sd[k].float().numpy(), v, err_msg=k)


def _inputs() -> tuple[list[torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    images = [torch.rand(1, 3, 32, 48, generator=gen) * 2 - 1 for _ in range(2)]
    return images, torch.tensor([0, 7])


# ------------------------------------------------------------------------------------------------
# the test helper itself
# ------------------------------------------------------------------------------------------------
def test_weights_by_rule_follows_the_readme_rule(reference: dict[str, np.ndarray]) -> None:
    keys = read_keys(CASE / "keys.txt")
    assert list(reference) == list(keys) and len(keys) == 280
    assert all(reference[k].shape == s and reference[k].dtype == np.float32 for k, s in keys.items())
    w = reference["decoder.dec_blocks.0.attn.qkv.weight"]  # (384, 128): gain / sqrt(128) scaling
    assert 0.8 / np.sqrt(128) * 0.9 < w.std() < 0.8 / np.sqrt(128) * 1.1
    assert abs(reference["decoder.dec_blocks.0.norm1.weight"].mean() - 1) < 0.05
    assert reference["decoder.dec_blocks.0.attn.qkv.bias"].std() < 0.03
    assert not np.array_equal(
        weights_by_rule(CASE / "keys.txt", 1)["decoder.dec_norm.bias"], reference["decoder.dec_norm.bias"]
    )


# ------------------------------------------------------------------------------------------------
# loading local checkpoints
# ------------------------------------------------------------------------------------------------
def test_load_folder(small_dir: Path, reference: dict[str, np.ndarray]) -> None:
    events: list[ProgressEvent] = []
    model = fast3r_core.load_model(small_dir, device="cpu", progress=events.append)
    assert [e.done for e in events if e.stage == "load"] == list(range(1, 281))
    assert not model.training
    assert next(model.parameters()).device.type == "cpu"
    assert model.config.decoder_args.depth == 10
    _assert_weights(model, reference)


def test_load_safetensors_file_with_config_beside(small_dir: Path, reference: dict[str, np.ndarray]) -> None:
    _assert_weights(weights.load_model(small_dir / "model.safetensors", "cpu"), reference)
    _assert_weights(weights.load_model(str(small_dir / "config.json"), "cpu"), reference)


def test_load_pth_file(tmp_path: Path, reference: dict[str, np.ndarray]) -> None:
    folder = _copy_config(tmp_path / "pth")
    torch.save({k: torch.from_numpy(v) for k, v in reference.items()}, folder / "model.pth")
    _assert_weights(weights.load_model(folder / "model.pth", "cpu"), reference)
    _assert_weights(weights.load_model(folder, "cpu"), reference)  # model.pth found in the folder


def test_load_pth_training_checkpoint_with_prefix_and_aliases(
    tmp_path: Path, reference: dict[str, np.ndarray]
) -> None:
    sd = {f"module.{k}": torch.from_numpy(v) for k, v in reference.items()}
    for head in ("downstream_head", "downstream_head_local"):  # the published module's alias names
        for i in range(4):
            sd[f"module.{head}.dpt.scratch.layer_rn.{i}.weight"] = sd[
                f"module.{head}.dpt.scratch.layer{i + 1}_rn.weight"
            ]
    folder = _copy_config(tmp_path / "ckpt")
    torch.save({"model": sd, "epoch": 3, "lr": 1e-4}, folder / "checkpoint.pth")
    _assert_weights(weights.load_model(folder / "checkpoint.pth", "cpu"), reference)
    assert set(weights.read_state_dict(folder / "checkpoint.pth")) == set(reference)


def test_half_precision_weights_are_cast_to_the_model_dtype(
    tmp_path: Path, reference: dict[str, np.ndarray]
) -> None:
    half = {k: v.astype(np.float16) for k, v in reference.items()}
    folder = _write_safetensors(tmp_path / "fp16", half)
    model = weights.load_model(folder, "cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    _assert_weights(model, {k: v.astype(np.float32) for k, v in half.items()})
    bf16 = weights.load_model(folder, "cpu", dtype="bf16")
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    _assert_weights(bf16, {k: torch.from_numpy(v).bfloat16().float().numpy() for k, v in half.items()})
    assert bf16.decoder.image_idx_emb.dtype == torch.bfloat16


def test_safetensors_are_read_into_the_parameters_once(
    small_dir: Path, reference: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading holds the checkpoint once: every tensor is read from the file straight into its
    parameter (no tensor materialised from the memory-mapped file and then copied; the bench
    bench/load_model.py measures the peak of a ViT-L checkpoint: 1.01 x its size)."""
    made: list[str] = []

    def no_copy(self: object, key: str) -> torch.Tensor:
        made.append(key)
        raise AssertionError("a tensor was materialised from the mapped file")

    monkeypatch.setattr(checkpoint._Reader, "get", no_copy)
    model = weights.load_model(small_dir, "cpu")
    assert made == []
    _assert_weights(model, reference)
    # the DPT convolutions are channels-last in the model: read through a temporary, same values
    conv = model.downstream_head.dpt.scratch.layer1_rn.weight  # 3x3
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    images, ids = _inputs()
    with torch.no_grad():
        out = model(images, ids)
    assert torch.isfinite(out[0]["pts3d_in_other_view"]).all()


def test_tensor_data_past_the_end_of_the_file_is_reported_as_damaged(
    tmp_path: Path, small_dir: Path, reference: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _write_safetensors(tmp_path / "short", reference)
    real = checkpoint._safetensors_spans

    def shifted(path: Path) -> dict[str, tuple[str, int, int]]:
        spans = real(path)  # as if the file were cut after the header was checked
        key = "downstream_head_local.dpt.head.4.bias"
        dtype, _offset, n = spans[key]
        spans[key] = (dtype, path.stat().st_size - n // 2, n)
        return spans

    monkeypatch.setattr(checkpoint, "_safetensors_spans", shifted)
    with pytest.raises(CheckpointError, match=r"damaged.*ends inside tensor downstream_head_local"):
        weights.load_model(folder, "cpu")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda sd: sd.pop("decoder.dec_norm.bias"), ["1 missing key", "decoder.dec_norm.bias"]),
        (
            lambda sd: sd.update({"decoder.extra.weight": np.zeros(3, np.float32)}),
            ["1 unexpected", "decoder.extra"],
        ),
        (
            lambda sd: sd.update({"decoder.dec_norm.weight": np.ones(64, np.float32)}),
            ["1 wrong shape", "decoder.dec_norm.weight: file [64] vs model [128]"],
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_strict_key_checking(
    tmp_path: Path, reference: dict[str, np.ndarray], edit, expected: list[str]
) -> None:
    sd = dict(reference)
    edit(sd)
    folder = _write_safetensors(tmp_path / "bad", sd)
    with pytest.raises(CheckpointError) as info:
        weights.load_model(folder, "cpu")
    for text in expected:
        assert text in str(info.value)


def test_many_missing_keys_are_counted(tmp_path: Path, reference: dict[str, np.ndarray]) -> None:
    sd = {k: v for k, v in reference.items() if not k.startswith("downstream_head_local.")}
    folder = _write_safetensors(tmp_path / "nolocal", sd)
    with pytest.raises(CheckpointError, match=r"\d+ missing key\(s\): downstream_head_local\..*more\)"):
        weights.load_model(folder, "cpu")


def test_truncated_safetensors_is_reported_as_damaged(tmp_path: Path, small_dir: Path) -> None:
    folder = _copy_config(tmp_path / "trunc")
    data = (small_dir / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged") as info:
        weights.load_model(folder, "cpu")
    assert str(folder / "model.safetensors") in str(info.value)
    assert "download it again" in str(info.value)


def test_garbage_pth_is_reported_as_damaged(tmp_path: Path) -> None:
    folder = _copy_config(tmp_path / "garbage")
    (folder / "model.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="damaged"):
        weights.load_model(folder, "cpu")


class Payload:
    """A Python object in a checkpoint: weights_only must refuse to unpickle it."""

    ran = False

    def __reduce__(self):
        return (Payload._mark, ())

    @staticmethod
    def _mark() -> Payload:
        Payload.ran = True
        return Payload()


def test_pth_with_pickled_objects_is_refused(tmp_path: Path, reference: dict[str, np.ndarray]) -> None:
    folder = _copy_config(tmp_path / "evil")
    sd: dict[str, object] = {k: torch.from_numpy(v) for k, v in reference.items()}
    sd["extra"] = Payload()
    torch.save(sd, folder / "model.pth")
    Payload.ran = False
    with pytest.raises(CheckpointError, match="Python objects"):
        weights.load_model(folder, "cpu")
    assert not Payload.ran


class _System:
    """Pickles as a call of ``os.system``: the classic hostile checkpoint."""

    def __reduce__(self):
        return (os.system, ("echo never",))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_checkpoint_that_would_run_code_is_refused_as_such(
    tmp_path: Path, reference: dict[str, np.ndarray], how: str
) -> None:
    """Said as "not data", never as a damaged download, and never with torch's hint to load it with
    weights_only=False (which would run it)."""
    import pickle

    folder = _copy_config(tmp_path / "evil")
    sd: dict[str, object] = {k: torch.from_numpy(v) for k, v in reference.items()}
    sd["extra"] = _System()
    if how == "torch.save":
        torch.save(sd, folder / "model.pth")
    else:
        with open(folder / "model.pth", "wb") as f:
            pickle.dump(sd, f, protocol=4)
    with pytest.raises(CheckpointError) as info:
        weights.load_model(folder, "cpu")
    text = str(info.value)
    if how == "torch.save":  # the pickle names os.system
        assert "holds Python objects" in text and "must be data, never code" in text
        assert "truncated" not in text
    else:  # framed (protocol 4): refused before any global is named
        assert "cannot be read as data only" in text
    assert "weights_only" not in text


def test_pth_with_non_tensor_values_is_refused(tmp_path: Path, reference: dict[str, np.ndarray]) -> None:
    folder = _copy_config(tmp_path / "mixed")
    sd: dict[str, object] = {k: torch.from_numpy(v) for k, v in reference.items()}
    sd["step"] = 12
    torch.save(sd, folder / "model.pth")
    with pytest.raises(CheckpointError, match=r"not tensors.*step"):
        weights.load_model(folder, "cpu")


def test_config_that_does_not_parse(tmp_path: Path, small_dir: Path) -> None:
    folder = tmp_path / "badcfg"
    shutil.copytree(small_dir, folder)
    (folder / "config.json").write_text('{"encoder_args": {', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        weights.load_model(folder, "cpu")
    (folder / "config.json").write_text(json.dumps({"encoder_args": {}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="decoder_args"):
        weights.load_model(folder, "cpu")


def test_decoder_width_that_the_weights_do_not_have(tmp_path: Path, small_dir: Path) -> None:
    """A narrower decoder builds (widths may differ, as in the published training config), but
    weights of a 128-wide decoder do not fit it: the error names the keys and both shapes."""
    folder = tmp_path / "widths"
    shutil.copytree(small_dir, folder)
    raw = json.loads((CASE / "config.json").read_text())  # Python json: Infinity is fine
    raw["decoder_args"]["embed_dim"] = 64
    (folder / "config.json").write_text(json.dumps(raw), encoding="utf-8")
    # refused from the weights' header, before any build (issue 16: configs are untrusted too)
    with pytest.raises(CheckpointError, match=r"do not fit the model.*decoder_embed\.weight"):
        weights.load_model(folder, "cpu")


def test_missing_config(tmp_path: Path, small_dir: Path) -> None:
    folder = tmp_path / "nocfg"
    folder.mkdir()
    shutil.copyfile(small_dir / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(ConfigError, match="looked for") as info:
        weights.load_model(folder, "cpu")
    assert str(folder / "config.json") in str(info.value)
    with pytest.raises(ConfigError, match="beside"):
        weights.load_model(folder / "model.safetensors", "cpu")


def test_cancelled_load(small_dir: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        weights.load_model(small_dir, "cpu", cancel=cancel)


def test_folder_without_weights(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"No weights file.*model\.safetensors"):
        weights.load_model(_copy_config(tmp_path / "empty"), "cpu")


def test_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="Unknown model"):
        weights.load_model("no-such-model")
    with pytest.raises(ModelNotAvailableError, match="No such model file"):
        weights.load_model(tmp_path / "missing")
    with pytest.raises(ModelNotAvailableError, match="No such model file"):
        weights.load_model("weights/model.pth")


# ------------------------------------------------------------------------------------------------
# save_model
# ------------------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path: Path, small_dir: Path) -> None:
    model = weights.load_model(small_dir, "cpu")
    out = weights.save_model(model, tmp_path / "saved")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]  # no temp files
    assert json.loads((out / "config.json").read_text()) == model.config.to_dict()
    assert "Infinity" in (out / "config.json").read_text()  # published format
    again = weights.load_model(out, "cpu")
    sd0, sd1 = model.state_dict(), again.state_dict()
    assert sd0.keys() == sd1.keys()
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    images, ids = _inputs()
    with torch.no_grad():
        a, b = model(images, ids), again(images, ids)
    for va, vb in zip(a, b, strict=True):
        for k in va:
            assert torch.equal(va[k], vb[k]), k


def test_save_overwrites_atomically(tmp_path: Path, small_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = weights.load_model(small_dir, "cpu")
    out = weights.save_model(model, tmp_path / "saved")
    before = (out / "model.safetensors").read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    with pytest.raises(OSError):
        weights.save_model(model, out)
    assert (out / "model.safetensors").read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]


# ------------------------------------------------------------------------------------------------
# registry, cache, resources
# ------------------------------------------------------------------------------------------------
def test_registry() -> None:
    vitl = weights.MODELS["fast3r-vitl-512"]
    assert vitl.repo_id == PUBLISHED and vitl.requires_license_acceptance
    assert vitl.files == ("config.json", "model.safetensors")
    assert 2.5e9 < vitl.approx_size_bytes < 2.7e9
    assert "Noncommercial" in vitl.license_name and vitl.license_url.startswith("https://")
    demo = weights.MODELS["demo"]
    assert demo.repo_id is None and demo.synthetic_only and not demo.requires_license_acceptance
    assert demo.bundled_path == registry.resources_dir() / "models" / "demo"


def test_resources_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = Path(registry.__file__).resolve().parents[2]
    assert REAL_RESOURCES_DIR() == repo / "resources"
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert REAL_RESOURCES_DIR() == tmp_path / "resources"


def test_models_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _no_network: Path) -> None:
    assert weights.models_cache_dir() == _no_network
    assert weights.models_cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(weights.CACHE_ENV)
    import platformdirs

    assert weights.models_cache_dir() == Path(platformdirs.user_cache_dir("fast3r-studio")) / "models"
    assert weights.model_cache_dir("fast3r-vitl-512", tmp_path) == tmp_path / "fast3r-vitl-512"
    assert weights.model_cache_dir("a/b", tmp_path) == tmp_path / "a--b"


def test_bundled_demo_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_dir: Path) -> None:
    assert not weights.is_cached("demo")
    with pytest.raises(ModelNotAvailableError, match="not in this installation"):
        weights.load_model("demo")
    shutil.copytree(small_dir, tmp_path / "resources" / "models" / "demo")
    assert weights.is_cached("demo")
    assert weights.resolve_model_dir("demo") == tmp_path / "resources" / "models" / "demo"
    status = {s.info.name: s for s in weights.list_models()}
    assert status["demo"].available and status["demo"].bundled
    assert status["demo"].size_on_disk == sum(p.stat().st_size for p in small_dir.iterdir())
    assert weights.download_model("demo") == status["demo"].local_path  # nothing to download
    assert weights.load_model("demo", "cpu").config.decoder_args.depth == 10


def test_resolve_model_dir(small_dir: Path) -> None:
    assert weights.resolve_model_dir(small_dir) == small_dir
    assert weights.resolve_model_dir(small_dir / "model.safetensors") == small_dir
    with pytest.raises(ModelNotAvailableError, match=r"huggingface\.co/jedyang97/Fast3R_ViT_Large_512"):
        weights.resolve_model_dir("fast3r-vitl-512")


def test_registry_import_needs_neither_torch_nor_hub() -> None:
    code = (
        "import sys, fast3r_core.weights as w\n"
        "w.list_models(); w.is_cached('fast3r-vitl-512'); w.models_cache_dir()\n"
        "print('torch' in sys.modules, 'huggingface_hub' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------------
# device choice
# ------------------------------------------------------------------------------------------------
def test_choose_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert weights.choose_device(None) == torch.device("cpu")
    assert weights.choose_device("auto") == torch.device("cpu")
    assert weights.choose_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="CUDA"):
        weights.choose_device("cuda")
    with pytest.raises(InputError, match="MPS"):
        weights.choose_device("mps")
    with pytest.raises(InputError, match="Unknown device"):
        weights.choose_device("gpu0")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert weights.choose_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert weights.choose_device(None) == torch.device("cuda")


# ------------------------------------------------------------------------------------------------
# downloads (fake Hub)
# ------------------------------------------------------------------------------------------------
def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Stands in for the Hub's HEAD (metadata) and GET (http_get with Range resume) calls."""

    def __init__(self, files: dict[str, bytes], chunk: int = 256 * 1024) -> None:
        self.files = dict(files)  # what the Hub's checksums describe
        self.served = dict(files)  # what actually arrives (tests corrupt it)
        self.chunk = chunk
        self.gets: list[tuple[str, int]] = []  # (filename, resume_size)
        # LFS files are identified by sha256, small git files by their git blob sha1
        self.etags = {
            n: hashlib.sha256(d).hexdigest() if n.endswith(".safetensors") else _git_sha1(d)
            for n, d in files.items()
        }

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
        monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", self.metadata)
        monkeypatch.setattr(huggingface_hub.file_download, "http_get", self.http_get)
        return self

    def metadata(self, url: str, *args: object, **kwargs: object) -> HfFileMetadata:
        name = url.rsplit("/", 1)[-1]
        return HfFileMetadata(
            commit_hash="c" * 40,
            etag=self.etags[name],
            location=url,
            size=len(self.files[name]),
            xet_file_data=None,
        )

    def http_get(
        self, url: str, temp_file, *, resume_size: int = 0, tqdm_class=None, **kwargs: object
    ) -> None:
        name = url.rsplit("/", 1)[-1]
        assert (
            "/resolve/" + "c" * 40 + "/" in url or name == "config.json"
        )  # later files use the pinned commit
        data = self.served[name]
        self.gets.append((name, resume_size))
        with tqdm_class(total=len(data), initial=resume_size, unit="B", desc=name) as bar:
            for start in range(resume_size, len(data), self.chunk):
                piece = data[start : start + self.chunk]
                bar.update(len(piece))  # huggingface_hub updates the bar before writing the chunk
                temp_file.write(piece)


@pytest.fixture
def hub_files(small_dir: Path) -> dict[str, bytes]:
    return {n: (small_dir / n).read_bytes() for n in ("config.json", "model.safetensors")}


def test_license_is_required_before_download(monkeypatch: pytest.MonkeyPatch) -> None:
    for source in ("fast3r-vitl-512", PUBLISHED):
        with pytest.raises(LicenseNotAcceptedError) as info:
            weights.load_model(source)
        msg = str(info.value)
        assert "FAIR Noncommercial Research License" in msg
        assert weights.MODELS["fast3r-vitl-512"].license_url in msg
        assert "--accept-license" in msg and "model manager" in msg
    with pytest.raises(LicenseNotAcceptedError):
        weights.download_model("fast3r-vitl-512")


@pytest.mark.parametrize(
    "error",
    [
        OfflineModeIsEnabled("offline"),
        __import__("httpx2").ConnectError("[Errno -3] Temporary failure in name resolution"),
    ],
    ids=["offline-mode", "no-connection"],
)
def test_offline_without_cache(monkeypatch: pytest.MonkeyPatch, _no_network: Path, error: Exception) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", fail)
    with pytest.raises(ModelNotAvailableError) as info:
        weights.load_model("fast3r-vitl-512", accept_license=True)
    msg = str(info.value)
    assert f"https://huggingface.co/{PUBLISHED}" in msg
    assert str(_no_network / "fast3r-vitl-512") in msg
    assert "local folder with config.json + model.safetensors" in msg


def test_hf_hub_offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE"):
        weights.download_model("someone/tiny")


def test_download_reports_progress_verifies_and_loads(
    monkeypatch: pytest.MonkeyPatch, hub_files: dict[str, bytes], _no_network: Path, reference
) -> None:
    hub = FakeHub(hub_files).install(monkeypatch)
    events: list[ProgressEvent] = []
    folder = weights.download_model("fast3r-vitl-512", accept_license=True, progress=events.append)
    assert folder == _no_network / "fast3r-vitl-512"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    for name, data in hub_files.items():
        assert (folder / name).read_bytes() == data
    total = sum(len(d) for d in hub_files.values())
    down = [e for e in events if e.stage == "download"]
    assert all(e.total == total for e in down)
    assert [e.done for e in down] == sorted(e.done for e in down)  # monotonic over both files
    assert down[-1].done == total and down[-1].fraction == 1.0
    assert {e.message for e in down} >= {"config.json", "model.safetensors"}
    assert any(e.stage == "verify" and e.done == e.total for e in events)
    assert [g[1] for g in hub.gets] == [0, 0]

    status = {s.info.name: s for s in weights.list_models()}["fast3r-vitl-512"]
    assert status.available and not status.bundled and status.local_path == folder
    assert status.size_on_disk == total and status.partial_bytes == 0
    assert weights.is_cached("fast3r-vitl-512") and weights.is_cached(PUBLISHED)

    # cached: loading needs neither the network nor the licence flag again
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *a, **k: pytest.fail("network"))
    _assert_weights(weights.load_model("fast3r-vitl-512", "cpu"), reference)
    _assert_weights(weights.load_model(PUBLISHED, "cpu"), reference)


def test_any_hub_repo_id_downloads_without_licence(
    monkeypatch: pytest.MonkeyPatch, hub_files: dict[str, bytes], _no_network: Path, reference
) -> None:
    FakeHub(hub_files).install(monkeypatch)
    _assert_weights(weights.load_model("someone/tiny-fast3r", "cpu"), reference)
    assert (_no_network / "someone--tiny-fast3r" / "model.safetensors").is_file()


def test_cancel_then_resume(
    monkeypatch: pytest.MonkeyPatch, hub_files: dict[str, bytes], _no_network: Path
) -> None:
    hub = FakeHub(hub_files, chunk=64 * 1024).install(monkeypatch)
    size = len(hub_files["model.safetensors"])
    cancel = threading.Event()

    def stop_midway(e: ProgressEvent) -> None:
        if e.stage == "download" and e.message == "model.safetensors" and e.done > e.total // 2:
            cancel.set()

    with pytest.raises(Cancelled):
        weights.download_model("someone/tiny", progress=stop_midway, cancel=cancel)
    folder = _no_network / "someone--tiny"
    parts = list(folder.glob("*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < size
    assert not (folder / "model.safetensors").exists()
    assert (folder / "config.json").is_file()  # finished before the cancel and kept
    assert not weights.is_cached("someone/tiny")
    kept = parts[0].stat().st_size

    cancel.clear()
    events: list[ProgressEvent] = []
    weights.download_model("someone/tiny", progress=events.append, cancel=cancel)
    assert hub.gets[-1] == ("model.safetensors", kept)  # resumed, not restarted
    assert (folder / "model.safetensors").read_bytes() == hub_files["model.safetensors"]
    assert not list(folder.glob("*.part"))
    down = [e for e in events if e.stage == "download"]
    assert down[0].done >= kept and down[-1].done == down[-1].total


def test_partial_download_is_listed(monkeypatch: pytest.MonkeyPatch, hub_files: dict[str, bytes]) -> None:
    FakeHub(hub_files, chunk=64 * 1024).install(monkeypatch)
    cancel = threading.Event()

    def stop(e: ProgressEvent) -> None:
        if e.message == "model.safetensors" and e.done > e.total // 2:
            cancel.set()

    with pytest.raises(Cancelled):
        weights.download_model("fast3r-vitl-512", accept_license=True, progress=stop, cancel=cancel)
    status = {s.info.name: s for s in weights.list_models()}["fast3r-vitl-512"]
    assert not status.available and status.partial_bytes > 0


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_checksum_mismatch(
    monkeypatch: pytest.MonkeyPatch, hub_files: dict[str, bytes], _no_network: Path, name: str
) -> None:
    hub = FakeHub(hub_files).install(monkeypatch)
    bad = bytearray(hub_files[name])
    bad[len(bad) // 2] ^= 0xFF
    hub.served[name] = bytes(bad)
    with pytest.raises(DownloadError, match=f"{name} is corrupt"):
        weights.download_model("someone/tiny")
    folder = _no_network / "someone--tiny"
    assert not (folder / name).exists()
    assert not list(folder.glob("*.part"))  # the bad file was removed
    hub.served[name] = hub_files[name]  # the next try succeeds
    assert (weights.download_model("someone/tiny") / name).read_bytes() == hub_files[name]


def test_network_failure_midway_keeps_the_partial_file(
    monkeypatch: pytest.MonkeyPatch, hub_files: dict[str, bytes], _no_network: Path
) -> None:
    hub = FakeHub(hub_files, chunk=64 * 1024).install(monkeypatch)
    httpx2 = __import__("httpx2")
    real = hub.http_get

    def flaky(url: str, temp_file, **kwargs):
        if url.endswith("model.safetensors"):
            temp_file.write(hub_files["model.safetensors"][:1000])
            raise httpx2.ReadTimeout("timed out")
        return real(url, temp_file, **kwargs)

    monkeypatch.setattr(huggingface_hub.file_download, "http_get", flaky)
    with pytest.raises(DownloadError, match="run it again to resume"):
        weights.download_model("someone/tiny")
    monkeypatch.setattr(huggingface_hub.file_download, "http_get", real)
    weights.download_model("someone/tiny")
    assert hub.gets[-1] == ("model.safetensors", 1000)


def test_materialize_keeps_shared_parameters_shared_and_buffers_persistent():
    """The meta model gets memory without Module.to_empty (which imports sympy): a parameter shared by
    two modules stays one tensor, and buffers keep their persistence."""
    import torch

    from fast3r_core.weights.model_io import _materialize

    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
        model[2].weight = model[0].weight  # tied, as an embedding and its output layer can be
        model.register_buffer("kept", torch.zeros(2))
        model.register_buffer("scratch", torch.zeros(5), persistent=False)
        model.register_buffer("expanded", torch.zeros(1, 3).expand(4, 3))  # stride 0: overlapping
    keys = set(model.state_dict())
    _materialize(model, torch.device("cpu"))
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert model[0].weight is model[2].weight  # still one parameter
    assert model[0].bias is not model[2].bias
    assert isinstance(model[0].weight, torch.nn.Parameter) and model[0].weight.requires_grad
    assert set(model.state_dict()) == keys  # "scratch" is still not saved
    assert model.scratch.shape == (5,) and model.kept.device.type == "cpu"
    model.expanded.copy_(torch.arange(12.0).reshape(4, 3))  # dense memory: every element writable
    assert model.expanded.is_contiguous()


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
@pytest.mark.parametrize("poison", ["nan", "inf", "int"])
def test_weights_that_are_not_finite_floats_are_refused(
    tmp_path: Path, reference: dict[str, np.ndarray], fmt: str, poison: str
) -> None:
    """A NaN, an infinity, or a weight stored as integers: refused on loading, naming the tensor (the
    run would give NaN or noise everywhere)."""
    sd = dict(reference)
    key = sorted(k for k, v in sd.items() if v.ndim == 2)[0]
    bad = sd[key].copy()
    if poison == "int":
        bad = np.round(bad * 100).astype(np.int64)
    else:
        bad.flat[3] = np.nan if poison == "nan" else np.inf
    sd[key] = bad
    folder = tmp_path / f"{fmt}-{poison}"
    if fmt == "safetensors":
        _write_safetensors(folder, sd)
    else:
        _copy_config(folder)
        torch.save(
            {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, folder / "model.pth"
        )
    needle = "NaN or infinite" if poison != "int" else "stored as int64"
    with pytest.raises(CheckpointError, match=needle) as info:
        weights.load_model(folder, "cpu")
    assert key in str(info.value)

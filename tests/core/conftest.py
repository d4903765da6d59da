"""Fixtures shared by the core tests."""

from __future__ import annotations

import json

import pytest
import torch

from fast3r_core.model import Fast3R, Fast3RConfig
from tests.tiny import PARITY_CONFIG


@pytest.fixture(scope="module")
def tiny() -> Fast3R:
    """The parity test's small config with a 4-block fusion decoder and narrow heads, random weights."""
    cfg = json.loads(PARITY_CONFIG.read_text(encoding="utf-8"))
    cfg["head_args"].update(dpt_layer_dims=[16, 32, 64, 128], dpt_feature_dim=32, dpt_last_dim=16)
    cfg["decoder_args"]["depth"] = 4
    torch.manual_seed(0)
    return Fast3R(Fast3RConfig.from_dict(cfg)).eval()

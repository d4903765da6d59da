"""The glibc allocator tuning of the forward pass (fast3r_core.allocator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from fast3r_core import allocator
from fast3r_core.inference import InferenceOptions, predict

glibc_only = pytest.mark.skipif(allocator.glibc() is None, reason="allocator tuning is glibc-only")

# Frees a 96 MiB tensor, allocates a 64 MiB one and writes it: how many pages did the kernel fault in?
# (The second block is smaller so that it fits the hole with memalign's padding wherever the hole is.)
_FAULTS = """
import json, resource, sys
import torch
from fast3r_core import allocator
tuned = allocator.tune_allocator()
n = 16 * 1024**2  # float32 elements: 64 MiB, above glibc's default mmap threshold (32 MiB at most)
torch.empty(n * 3 // 2).fill_(1.0)  # allocated, written, freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.empty(n).fill_(2.0)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
allocator.release_free_memory()
print(json.dumps({"tuned": tuned, "faults": faults}))
"""


def _faults(tuning: str) -> dict:
    env = {**os.environ, "FAST3R_MALLOC_TUNING": tuning}
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_tuned_allocator_reuses_a_freed_large_block_instead_of_faulting_in_new_pages():
    pages = 64 * 1024**2 // os.sysconf("SC_PAGE_SIZE")
    untuned, tuned = _faults("0"), _faults("1")
    assert untuned["tuned"] is False and tuned["tuned"] is True
    assert untuned["faults"] > pages // 2  # a fresh mmap: every page faulted in (and zeroed)
    assert tuned["faults"] < pages // 20  # the freed block came back from the heap


@glibc_only
def test_predict_tunes_the_allocator_on_the_cpu(tiny, monkeypatch):
    monkeypatch.setattr(allocator, "_tuned", False)
    monkeypatch.delenv("FAST3R_MALLOC_TUNING", raising=False)
    images = [torch.rand(3, 32, 32) * 2 - 1 for _ in range(2)]
    predict(tiny, images, options=InferenceOptions(num_threads=1))
    assert allocator._tuned


def test_tuning_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(allocator, "_tuned", False)
    monkeypatch.setenv("FAST3R_MALLOC_TUNING", "0")
    assert allocator.tune_allocator() is False
    assert allocator._tuned is False
    allocator.release_free_memory()  # a no-op, not an error

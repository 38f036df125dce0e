"""Identical bytes across processes and thread counts; golden streams for shipped weights."""
import hashlib
import json
import subprocess
import sys

import pytest
import torch

from lcodec.registry import get_spec
from tests.conftest import FIXTURES, ROOT

GOLDEN = FIXTURES / "golden" / "walloc-rgb.json"

_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
import lcodec
from lcodec.io.image import read_image
x = read_image(sys.argv[2]).unsqueeze(0)
print(hashlib.sha256(lcodec.load("walloc-rgb").compress(x)).hexdigest())
"""


def _sha_in_subprocess(threads: int) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(threads), str(FIXTURES / "coffee_481x321.png")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return out.stdout.strip()


def test_identical_bytes_across_processes_and_threads(codec, photo):
    here = hashlib.sha256(codec.compress(photo)).hexdigest()
    assert _sha_in_subprocess(1) == here
    assert _sha_in_subprocess(2) == here


def test_golden_bitstream(codec, photo, request):
    """sha256 of the stream the shipped weights write for the fixture photo.

    A change here means old streams may no longer decode: bump the weights or the
    format version deliberately, then regenerate with --regenerate-golden.
    """
    got = {
        f"walloc-rgb-q{q}": hashlib.sha256(_load(q).compress(photo)).hexdigest()
        for q in get_spec("walloc-rgb").qualities
    }
    if request.config.getoption("--regenerate-golden"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=2) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert got == expected


def _load(q: int):
    import lcodec

    return lcodec.load("walloc-rgb", quality=q)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_decoder_reads_cpu_streams_exactly(codec, photo):
    """Symbols decoded are integers from the stream: identical wherever the decoder runs."""
    data = codec.compress(photo)
    z_cpu, _ = codec.decompress_latents(data)
    import lcodec

    gpu = lcodec.load("walloc-rgb", device="cuda")
    z_gpu, _ = gpu.decompress_latents(data)
    assert torch.equal(z_cpu, z_gpu)
    assert gpu.compress(photo.cuda()) == data  # encoding on a CUDA-loaded codec writes the same bytes
    x_gpu = gpu.decompress(data).cpu()
    assert float((x_gpu - codec.decompress(data)).abs().max()) < 1e-3


def test_golden_bitstream_hyperprior(photo, request):
    """Same promise for walloc-rgb-hp: z and y sections, table indexes from the integer network."""
    import lcodec

    golden = FIXTURES / "golden" / "walloc-rgb-hp.json"
    got = {f"walloc-rgb-hp-q{q}": hashlib.sha256(lcodec.load("walloc-rgb-hp", quality=q).compress(photo)).hexdigest()
           for q in get_spec("walloc-rgb-hp").qualities}
    if request.config.getoption("--regenerate-golden"):
        golden.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(golden.read_text())

"""Identical bytes across processes and thread counts; golden streams for shipped weights."""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from lcodec.registry import get_spec
from tests.conftest import FIXTURES, ROOT

_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
import lcodec
from lcodec.io.image import read_image
x = read_image(sys.argv[2]).unsqueeze(0)
print(hashlib.sha256(lcodec.load(sys.argv[3]).compress(x)).hexdigest())
"""


def _sha_in_subprocess(threads: int, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(threads), str(FIXTURES / "coffee_481x321.png"), name],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},  # no spinning threads on a busy 2-core machine
    )
    return out.stdout.strip()


@pytest.mark.parametrize("name", ["walloc-rgb", "walloc-rgb-rd"])  # linear encoder; nonlinear float64 encoder
def test_identical_bytes_across_processes_and_threads(name, photo):
    import lcodec

    here = hashlib.sha256(lcodec.load(name).compress(photo)).hexdigest()
    assert _sha_in_subprocess(1, name) == here
    assert _sha_in_subprocess(2, name) == here


@pytest.mark.parametrize("name", ["walloc-rgb", "walloc-rgb-rd", "walloc-rgb-rd-gmm", "walloc-rgb-light",
                                  "walloc-rgb-mcq"])
def test_golden_bitstream(name, photo, request):
    """sha256 of the stream each shipped image weights set writes for the fixture photo, per rate.

    A change here means old streams may no longer decode: bump the weights or the
    format version deliberately, then regenerate with --regenerate-golden.
    """
    import lcodec

    golden = FIXTURES / "golden" / f"{name}.json"
    got = {f"{name}-q{q}": hashlib.sha256(lcodec.load(name, quality=q).compress(photo)).hexdigest()
           for q in get_spec(name).weights}  # the rates that ship
    if request.config.getoption("--regenerate-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(golden.read_text())


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
    assert float((x_gpu - codec.decompress(data)).abs().max()) < 1 / 255  # float decoder; CUDA convolutions may use TF32

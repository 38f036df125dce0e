"""DDP on CPU: two gloo processes under torchrun train, checkpoint and resume."""
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from tests.conftest import FIXTURES, ROOT

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from lcodec.train.loop import TrainRecipe, train
recipe = TrainRecipe(codec="walloc-rgb", quality=3, lmbda=0.01, crop=32, batch_size=2, steps=int(sys.argv[3]),
                     checkpoint_every_s=1e9)
train(recipe, sys.argv[1], sys.argv[2], progress=False)
"""


def test_torchrun_two_processes_gloo(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    assert torchrun.exists(), "torchrun is installed with torch"
    data = tmp_path / "data"
    data.mkdir()
    Image.open(FIXTURES / "coffee_481x321.png").crop((0, 0, 96, 80)).save(data / "a.png")
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    for steps in (2, 3):  # train, then resume for one more step
        r = subprocess.run(
            [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(data), str(run), str(steps)],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
        assert r.returncode == 0, r.stderr[-2000:]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 3 and ck["world_size"] == 2
    shutil.rmtree(run)

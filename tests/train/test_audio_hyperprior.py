"""The walloc-audio-hp recipe's second stage: ``--init`` starts from a weights file's entropy model."""
import pytest
import torch

import lcodec
from lcodec.api import file_sha256, weights_path
from lcodec.errors import InputError
from lcodec.train.audio_hyperprior import build, init_entropy


def test_init_takes_every_entropy_tensor_of_the_file():
    codec, _ = build(1)
    with torch.no_grad():
        for w in codec.entropy.parameters():
            w.add_(1.0)  # anything the init leaves alone would stay off the file's values
    path = weights_path("walloc-audio-hp", 1)
    stages = init_entropy(codec, path, 1)
    shipped = lcodec.load("walloc-audio-hp", 1).entropy.state_dict()
    mine = codec.entropy.state_dict()
    params = {k for k, _ in codec.entropy.named_parameters()}
    assert len(params) > 10 and params <= set(mine)
    for k in params:
        assert torch.equal(mine[k], shipped[k].to(mine[k].dtype)), k
    # the record says which file the stage started from
    assert stages[-1]["file"] == path.name and stages[-1]["sha256"] == file_sha256(path)


def test_init_refuses_what_is_not_a_hyperprior_file(tmp_path):
    codec, _ = build(1)
    with pytest.raises(InputError, match="holds walloc-audio weights"):
        init_entropy(codec, weights_path("walloc-audio", 1), 1)
    with pytest.raises(InputError, match="holds quality 3, not 1"):
        init_entropy(codec, weights_path("walloc-audio-hp", 3), 1)
    with pytest.raises(InputError, match="no such weights file"):
        init_entropy(codec, tmp_path / "missing.pt", 1)

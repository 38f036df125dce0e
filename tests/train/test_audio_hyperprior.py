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


def test_the_recipe_runs_end_to_end_with_extra_folders_and_writes_a_loadable_log(tmp_path):
    """``main`` on one-second crops (the four training names, one held-out clip, an --extra folder
    with a mono 16 kHz clip): the weights load with ``weights_only=True`` and the JSON log lists
    every clip trained on, the extra one included."""
    import json

    import numpy as np
    import soundfile as sf

    from lcodec.train.audio_hyperprior import main
    from lcodec.train.recipes.walloc_audio import TRAIN_CLIPS

    rng = np.random.default_rng(0)
    music, extra = tmp_path / "music", tmp_path / "speech"
    music.mkdir()
    extra.mkdir()
    for name in (*TRAIN_CLIPS, "held.wav"):
        sf.write(music / name, (0.1 * rng.standard_normal((48000, 2))).astype(np.float32), 48000, subtype="PCM_16")
    sf.write(extra / "mono16k.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000, subtype="PCM_16")
    out, log = tmp_path / "w" / "hp-q1.pt", tmp_path / "log.json"
    assert main(["1", "--data", str(music), "--extra", str(extra), "--no-augment", "--steps", "2",
                 "--length", "64", "--batch", "2", "--checkpoint-every", "2", "--out", str(out), "--log", str(log)]) == 0
    record = json.loads(log.read_text())
    assert record["train_clips"] == [*sorted(TRAIN_CLIPS), "mono16k.wav"]
    assert record["held_out_clips"] == ["held.wav"] and record["arguments"]["extra"] == [str(extra)]
    state = torch.load(out, map_location="cpu", weights_only=True)
    assert state["training"]["train_clips"] == record["train_clips"]

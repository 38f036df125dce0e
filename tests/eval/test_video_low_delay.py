"""The video comparison's settings: x264/x265 in low delay (no B-frames, an intra frame every 32
frames, as walloc-video's default GOP), and the `NAME+gopN` variant of a learned video codec."""
import io

import pytest
import torch

from lcodec.errors import ModelError
from lcodec.eval.adapters import MediaItem, get_eval_codec, split_gop


def test_split_gop():
    assert split_gop("walloc-video+gop1") == ("walloc-video", 1)
    assert split_gop("walloc-video") == ("walloc-video", 0)
    for bad in ("walloc-video+gop0", "walloc-video+gop", "walloc-video+gopx"):
        with pytest.raises(ModelError):
            split_gop(bad)
    with pytest.raises(ModelError, match="video"):
        get_eval_codec("walloc-rgb-rd+gop4")


@pytest.mark.parametrize("name", ["h264-ld", "h265-ld"])
def test_low_delay_classical_codecs_have_no_b_frames_and_an_intra_period_of_32(name):
    import av

    try:
        codec = get_eval_codec(name)
    except ModelError as exc:
        pytest.skip(str(exc))
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(3, 1, 64, 64, generator=gen)
    x = torch.cat([torch.roll(base, shifts=t, dims=-1) for t in range(40)], dim=1).unsqueeze(0)
    item = MediaItem("moving", "video", x, fps=25.0)
    data = codec.encode(item, 32).data
    with av.open(io.BytesIO(data)) as container:
        frames = [(int(f.pict_type), f.key_frame) for f in container.decode(container.streams.video[0])]
    kinds = [k for k, _ in frames]  # FFmpeg's AVPictureType: 1 intra, 2 predicted, 3 bi-predicted
    assert len(kinds) == 40
    assert 3 not in kinds
    assert [t for t, k in enumerate(kinds) if k == 1] == [0, 32]
    assert [t for t, (_, key) in enumerate(frames) if key] == [0, 32]


def test_a_learned_video_codec_with_gop1_codes_every_frame_intra():
    from lcodec.codecs.video import INTRA

    codec = get_eval_codec("walloc-video+gop1")
    x = torch.rand(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    data = codec.encode(MediaItem("v", "video", x, fps=25.0), 1).data
    import lcodec

    _, index = lcodec.load("walloc-video", 1).parse(data)
    assert index.kinds == [INTRA] * 3
    assert codec.decode(data, MediaItem("v", "video", x, fps=25.0)).shape == x.shape

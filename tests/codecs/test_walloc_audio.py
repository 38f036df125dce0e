"""walloc-audio: geometry, mono/stereo, any sample rate, exact symbol round trips, hostile streams."""
import hashlib
import json
import math
import subprocess
import sys

import pytest
import torch

from lcodec.bitstream.container import read_container
from lcodec.entropy.model import channel_indexes
from lcodec.errors import BitstreamError, InputError
from lcodec.io.audio import read_audio
from lcodec.registry import create_codec, get_spec
from tests.conftest import FIXTURES, ROOT, reseal

CLIP = FIXTURES / "glock_1s_48k_stereo.flac"
GOLDEN = FIXTURES / "golden" / "walloc-audio.json"


@pytest.fixture(scope="module")
def untrained():
    """An untrained codec with frozen tables: every code path, no shipped weights needed."""
    torch.manual_seed(0)
    c = create_codec("walloc-audio", 2).eval()
    c.export()
    return c


@pytest.fixture(scope="module")
def shipped():
    import lcodec

    return lcodec.load("walloc-audio")


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    x, rate = read_audio(CLIP)
    assert rate == 48000 and x.shape == (2, 48000)
    return x


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate,samples", [(48000, 1), (48000, 48001), (44100, 44101), (16000, 7), (22050, 22051)])
def test_round_trip_keeps_length_rate_and_channels(untrained, channels, rate, samples):
    x = (torch.rand(1, channels, samples, generator=torch.Generator().manual_seed(samples)) - 0.5) * 0.5
    data = untrained.compress(x, rate)
    c = read_container(data)
    assert c.modality == "audio" and c.geometry.sample_rate == rate and c.geometry.shape == (1, channels, samples)
    y = untrained.decompress(data)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.abs().max()) <= 1.0


@pytest.mark.parametrize("channels", [1, 2])
def test_symbols_decode_exactly(untrained, clip, channels):
    x = clip[:channels, :20000].unsqueeze(0)
    z = untrained.encode_latents(x)
    assert z.shape == (1, 512, math.ceil(20000 / 256)) and z.dtype == torch.int32
    z_dec, shape, rate = untrained.decompress_latents(untrained.compress(x))
    assert torch.equal(z_dec, z) and shape == (1, channels, 20000) and rate == 48000


def test_mono_stream_carries_no_side_latents(untrained, clip):
    mono = clip[:1].unsqueeze(0)
    z = untrained.encode_latents(mono)
    # the side half of a mono signal is a constant the decoder knows: round(bias of the side encoder)
    side = torch.round(untrained.transform.analysis.g_a.bias.detach().double()[256:]).to(z.dtype)
    assert torch.equal(z[:, 256:], side.view(1, -1, 1).expand_as(z[:, 256:]))
    dual = untrained.compress(mono.expand(1, 2, -1).contiguous())
    assert len(untrained.compress(mono)) < len(dual)
    assert torch.equal(untrained.decompress_latents(dual)[0], z)  # L = R codes the same latents as mono


def test_batch_composition_does_not_change_symbols(untrained, clip):
    a, b = clip[:, :9000].unsqueeze(0), clip[:, 9000:18000].unsqueeze(0)
    both = untrained.encode_latents(torch.cat([a, b]))
    assert torch.equal(both[:1], untrained.encode_latents(a)) and torch.equal(both[1:], untrained.encode_latents(b))


@pytest.mark.parametrize("channels", [1, 2])
def test_rate_is_honest(untrained, clip, channels):
    x = clip[:channels].unsqueeze(0)
    payload = read_container(untrained.compress(x)).sections[0]
    z = untrained.encode_latents(x)[:, : 256 * channels].numpy()  # mono streams carry the mid half
    ideal = untrained.entropy.tables.information_content(z.reshape(-1), channel_indexes(z.shape))
    assert ideal <= 8 * len(payload) <= 1.01 * untrained.estimate_bits(x) + 32


@pytest.mark.parametrize("bad,message", [
    (torch.zeros(1, 3, 100), "1|2"),
    (torch.zeros(1, 2, 0), "empty"),
    (torch.full((1, 2, 100), float("nan")), "NaN"),
    (torch.zeros(1, 2, 100, dtype=torch.int16), "float"),
])
def test_bad_input_is_refused_clearly(untrained, bad, message):
    with pytest.raises(InputError, match=message):
        untrained.compress(bad)


def test_bad_sample_rate_is_refused(untrained):
    with pytest.raises(InputError, match="sample rate"):
        untrained.compress(torch.zeros(1, 2, 100), 0)


def test_hostile_streams_raise_bitstream_errors(untrained, clip):
    data = untrained.compress(clip[:, :4800].unsqueeze(0))
    with pytest.raises(BitstreamError):
        untrained.decompress(data[: len(data) // 2])
    # a resealed header that declares ten minutes of audio for a few hundred bytes of payload
    c = read_container(data)
    from lcodec.bitstream.container import Geometry, write_container
    from dataclasses import replace

    forged = write_container(replace(c, geometry=Geometry(shape=(1, 2, 48000 * 600), bit_depth=16, sample_rate=48000)))
    with pytest.raises(BitstreamError, match="too short"):
        untrained.decompress(forged)
    image_like = write_container(replace(c, geometry=Geometry(shape=(1, 3, 8, 8), bit_depth=8)))
    with pytest.raises(BitstreamError):
        untrained.decompress(reseal(image_like))


# ------------------------------------------------------------------ shipped weights
def test_codec_list_shows_every_shipped_rate():
    spec = get_spec("walloc-audio")
    assert spec.modality == "audio" and spec.sample_rate == 48000
    assert set(spec.weights) == set(spec.qualities) and len(spec.qualities) >= 3
    assert set(spec.weights_sha256) == set(spec.qualities)


def test_shipped_rates_are_ordered(clip):
    import lcodec

    sizes, errors = [], []
    for q in get_spec("walloc-audio").qualities:
        c = lcodec.load("walloc-audio", q)
        data = c.compress(clip.unsqueeze(0))
        sizes.append(len(data))
        errors.append(float(((c.decompress(data)[0] - clip) ** 2).mean()))
    assert sizes == sorted(sizes) and errors == sorted(errors, reverse=True)


def test_no_clicks_at_the_clip_borders(shipped):
    """The whole clip is one transform (no chunks): the error near the first and last 10 ms
    is no louder than in the middle, and an odd length decodes to exactly that length."""
    rate, n = 44100, 44100 + 1
    t = torch.arange(n, dtype=torch.float64) / rate
    tone = 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.1 * torch.sin(2 * math.pi * 1250 * t)
    x = torch.stack([tone, 0.8 * tone]).float().unsqueeze(0)
    y = shipped.decompress(shipped.compress(x, rate))
    assert y.shape == x.shape
    e = (y - x)[0]
    edge = int(0.01 * rate)
    rms = lambda v: float(v.pow(2).mean().sqrt())  # noqa: E731
    middle = rms(e[:, n // 2 - 2 * edge : n // 2 + 2 * edge])
    assert rms(e[:, :edge]) <= 3 * middle + 1e-4
    assert rms(e[:, -edge:]) <= 3 * middle + 1e-4
    assert 10 * math.log10(float(x.pow(2).mean()) / float(e.pow(2).mean())) > 15


_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
import lcodec
from lcodec.io.audio import read_audio
x, rate = read_audio(sys.argv[2])
print(hashlib.sha256(lcodec.load(sys.argv[3]).compress(x.unsqueeze(0), rate)).hexdigest())
"""


@pytest.mark.parametrize("name", ["walloc-audio", "walloc-audio-hp"])
def test_identical_bytes_across_processes_and_threads(name, clip):
    import lcodec

    here = hashlib.sha256(lcodec.load(name).compress(clip.unsqueeze(0))).hexdigest()
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", _SCRIPT, str(threads), str(CLIP), name],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        assert out.stdout.strip() == here


def test_golden_bitstream(clip, request):
    """sha256 of the streams the shipped weights write for the fixture clip (stereo and mono)."""
    import lcodec

    got = {}
    for q in get_spec("walloc-audio").qualities:
        c = lcodec.load("walloc-audio", q)
        got[f"walloc-audio-q{q}"] = hashlib.sha256(c.compress(clip.unsqueeze(0))).hexdigest()
        got[f"walloc-audio-q{q}-mono"] = hashlib.sha256(c.compress(clip[:1].unsqueeze(0))).hexdigest()
    if request.config.getoption("--regenerate-golden"):
        GOLDEN.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(GOLDEN.read_text())

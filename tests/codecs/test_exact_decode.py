"""Exact decode (lcodec.models.exact): the same PNG bytes from one stream on any thread count,
process and batch; the integer arithmetic checked against an int64 reference."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lcodec
from lcodec.models.exact import ACT_BITS, GELU_RANGE, IntConv, exact_gelu, gelu_table
from tests.conftest import FIXTURES, ROOT

# every shipped image codec whose decoder is WaLLoC's synthesis (vq-rgb: after its code decoder)
EXACT = ["walloc-rgb", "walloc-rgb-light", "walloc-rgb-rd", "walloc-rgb-rd-gmm", "walloc-rgb-mcq", "vq-rgb"]
AUDIO = ["walloc-audio", "walloc-audio-hp"]

_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
import lcodec
from lcodec.io.image import read_image, write_image
x = read_image(sys.argv[2]).unsqueeze(0)
for name in sys.argv[4:]:
    codec = lcodec.load(name)
    codec.exact_decode = sys.argv[3] == "exact"
    png = write_image("x.png", codec.decompress(codec.compress(x))[0])
    print(name, hashlib.sha256(png).hexdigest())
from lcodec.io.audio import encode_audio, read_audio
audio, rate = read_audio(sys.argv[2].replace("crop.png", "glock_1s_48k_stereo.flac"))
for name in AUDIO:
    codec = lcodec.load(name)
    codec.exact_decode = sys.argv[3] == "exact"
    wav = encode_audio(codec.decompress(codec.compress(audio.unsqueeze(0), rate)), rate, ".wav")
    print(name, hashlib.sha256(wav).hexdigest())
    if name == "walloc-audio-hp":  # the same samples declared as 44.1 kHz: decoding resamples 48 -> 44.1 kHz
        wav = encode_audio(codec.decompress(codec.compress(audio.unsqueeze(0), 44100)), 44100, ".wav")
        print(name + "@44100", hashlib.sha256(wav).hexdigest())
from lcodec.io.video import iter_video
video = lcodec.load("walloc-video")
video.image.exact_decode = sys.argv[3] == "exact"
frames = video.decompress(video.compress_frames(iter_video(sys.argv[2].replace("crop.png", "clip.y4m")), gop=3))
print("walloc-video", hashlib.sha256(torch.round(frames * 255).to(torch.uint8).numpy().tobytes()).hexdigest())
""".replace("AUDIO", repr(AUDIO))


def _decoded_png_hashes(threads: int, image, mode: str = "exact") -> dict[str, str]:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(threads), str(image), mode, *EXACT],
                         capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    return dict(line.split() for line in out.stdout.splitlines())


@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    from PIL import Image

    import shutil

    path = tmp_path_factory.mktemp("exact") / "crop.png"
    Image.open(FIXTURES / "coffee_481x321.png").crop((0, 0, 320, 224)).save(path)
    shutil.copy(FIXTURES / "glock_1s_48k_stereo.flac", path.parent)
    shutil.copy(FIXTURES / "basketball_96x64_6f.y4m", path.parent / "clip.y4m")
    return path


def test_decoded_pngs_and_wavs_are_identical_with_1_and_2_threads_in_separate_processes(crop, request):
    one, two = _decoded_png_hashes(1, crop), _decoded_png_hashes(2, crop)
    assert set(one) == set(EXACT + AUDIO + ["walloc-audio-hp@44100", "walloc-video"])
    assert one == two
    golden = FIXTURES / "golden" / "decoded_media.json"  # beside the golden streams
    if request.config.getoption("--regenerate-golden"):
        golden.write_text(json.dumps(one, indent=2) + "\n")
    assert one == json.loads(golden.read_text())


def test_batch_composition_does_not_change_an_item(photo):
    codec = lcodec.load("walloc-rgb-rd", quality=2)
    a, b = photo[..., :128, :192], photo[..., 100:228, 200:392]
    both = codec.decompress(codec.compress(torch.cat([a, b])))
    assert torch.equal(both[1], codec.decompress(codec.compress(b))[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["walloc-rgb", "walloc-rgb-rd", "vq-rgb"])
def test_a_codec_on_cuda_decodes_to_the_cpu_codecs_pixels(name, photo):
    """CUDA <-> CPU: one stream, decoded by the codec on each device, gives the same values (the
    fixed-point synthesis runs on the CPU; the entropy decode and the means may run on CUDA)."""
    import copy

    cpu = lcodec.load(name)
    gpu = copy.deepcopy(cpu).cuda()
    for data in (cpu.compress(photo), gpu.compress(photo.cuda())):
        assert torch.equal(gpu.decompress(data).cpu(), cpu.decompress(data))


def test_exact_decoder_stays_within_a_fraction_of_a_level_of_the_float_one(photo):
    for name in ("walloc-rgb", "walloc-rgb-rd", "vq-rgb"):
        codec = lcodec.load(name)
        data = codec.compress(photo)
        exact = codec.decompress(data)
        codec.exact_decode = False
        flt = codec.decompress(data)
        assert float((exact - flt).abs().max()) * 255 < 1.0
        mse = lambda x: float(((x - photo) ** 2).mean())  # noqa: E731
        assert abs(10 * np.log10(mse(flt) / mse(exact))) < 0.01  # dB


@pytest.mark.parametrize("name,slack", [("vq-rgb", 0.0), ("walloc-rgb-rd", 0.02)])
def test_stated_macs_per_pixel_match_torchs_count_of_the_float_decoder(name, slack):
    """``macs_per_pixel`` against PyTorch's FLOP counter over the float decoder (rd: its post-filter
    also computes a halo around the image, up to 2% more)."""
    from torch.utils.flop_counter import FlopCounterMode

    codec = lcodec.load(name)
    codec.exact_decode = False
    latents = codec.encode_latents(torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)))
    with FlopCounterMode(display=False) as counter:
        out = codec._decode_padded(latents)
    counted = counter.get_total_flops() / 2 / (out.shape[-2] * out.shape[-1])
    stated = codec.exact_decoder().macs_per_pixel()
    assert stated <= counted <= stated * (1 + slack)


def test_digest_pins_the_derived_tables():
    """``digest`` is a pure function of the weights (two builds agree) and sees a one-unit change
    in any derived integer table."""
    codec = lcodec.load("walloc-rgb")
    pre, synthesis = codec.transform.exact_synthesis()
    from lcodec.models.exact import ExactWallocDecoder

    first, second = ExactWallocDecoder(synthesis, pre=pre), ExactWallocDecoder(synthesis, pre=pre)
    assert first.digest() == second.digest()
    second.tail.weight[0, 0, 0, 0] += 1
    assert first.digest() != second.digest()


def test_int_conv_equals_an_int64_reference():
    """The float64 convolution of integers is the integer convolution: compared with int64
    arithmetic (unfold + integer matmul), at the largest inputs the bounds allow."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 192, 3, 3, generator=g).numpy() * 0.05
    b = torch.randn(8, generator=g).numpy()
    conv = IntConv(w, b, ACT_BITS, dims=2, padding=1)
    a = torch.randint(-2**25, 2**25 + 1, (1, 192, 6, 7), generator=g)
    got = conv(a.double())
    wi = conv.weight.to(torch.int64).view(8, -1)
    cols = F.unfold(F.pad(a, (1, 1, 1, 1)).double(), 3).round().to(torch.int64)[0]  # entries < 2**25: exact
    acc = wi @ cols + conv.bias.to(torch.int64).view(-1, 1)
    # rescale by 2**(ACT_BITS - acc_bits) <= 1 and round half up, in integers
    shift = (-torch.log2(conv.shift)).round().to(torch.int64).view(-1, 1)
    ref = torch.div(acc + (1 << shift) // 2, 1 << shift, rounding_mode="floor").clamp(-2**25, 2**25)
    assert torch.equal(got.reshape(8, -1).to(torch.int64), ref)
    peaks = conv.weight.abs().flatten(1).max(1).values  # 16-bit weights: each channel's peak in the top octave
    assert bool(((peaks >= 2**14 - 1) & (peaks <= 2**15 - 1)).all())


def _int64_conv(conv: IntConv, a: torch.Tensor, k: int, pad: int, dims: int) -> torch.Tensor:
    """The layer in int64: unfold + integer matmul, rescale by 2**-s (s of either sign) and
    round half up, clamp; the output as (B, O, positions)."""
    x = a.to(torch.int64)
    if dims == 1:  # a 1-D layer is a 2-D one on a single row
        x, kernel, padding = x.unsqueeze(2), (1, k), (0, pad)
    else:
        kernel, padding = (k, k), (pad, pad)
    cols = F.unfold(F.pad(x.double(), (padding[1],) * 2 + (padding[0],) * 2), kernel).round().to(torch.int64)
    acc = conv.weight.to(torch.int64).reshape(conv.weight.shape[0], -1) @ cols + conv.bias.to(torch.int64).view(-1, 1)
    s = (-torch.log2(conv.shift)).round().to(torch.int64).view(-1, 1)  # acc has s more fractional bits
    up = acc * (1 << (-s).clamp(min=0))  # s < 0: an exact left shift
    sp = s.clamp(min=0)
    return torch.div(up + (1 << sp) // 2, 1 << sp, rounding_mode="floor").clamp(-2**25, 2**25)


@pytest.mark.parametrize("dims,k,pad,batch,scale,band", [
    (2, 3, 1, 2, 0.05, 1 << 18),  # the synthesis' 3x3 layers, two images
    (2, 3, 0, 1, 0.05, 6 * 256),  # the post-filter's valid 3x3, bands of 256 outputs
    (2, 1, 0, 1, 0.05, 1 << 18),  # 1x1 projections
    (1, 3, 1, 2, 0.05, 6 * 300),  # audio's 1-D layers, several bands
    (2, 3, 1, 1, 900.0, 6 * 256),  # some weights so large that their rescale is a left shift (not folded)
])
def test_int_conv_gemm_path_equals_int64_for_every_layer_shape(dims, k, pad, batch, scale, band):
    """The tap-by-tap GEMMs over flattened rows (bands, batch items, 1-D, 1x1, the unfolded
    rescale) give the int64 convolution's integers, at inputs up to the clamp."""
    g = torch.Generator().manual_seed(k + 10 * pad + batch)
    shape = (6, 40) + ((k,) if dims == 1 else (k, k))
    w = torch.randn(*shape, generator=g).numpy() * 0.05
    w[:3] *= scale / 0.05  # channels 0-2 (the rest keep a right shift)
    b = torch.randn(6, generator=g).numpy()
    in_bits = 8 if scale > 1 else ACT_BITS
    conv = IntConv(w, b, in_bits, dims=dims, padding=pad)
    conv.band_values = band
    assert conv.folded == (scale < 1)
    size = (batch, 40) + ((1000,) if dims == 1 else (30, 41))
    a = torch.randint(-2**25, 2**25 + 1, size, generator=g)
    got = conv(a.double())
    ref = _int64_conv(conv, a, k, pad, dims)
    assert got.shape[:2] == (batch, 6)
    assert torch.equal(got.reshape(batch, 6, -1).to(torch.int64), ref)


def test_polyphase_merge_equals_the_packets_transposed_convolution():
    """The exact inverse step (``merge_exact``) gives ``WaveletPacket.merge``'s integers: 1-D with
    the audio packet's 16-tap filters and Haar, 2-D along each axis with 8-tap filters and Haar,
    long and short signals, many channels."""
    from lcodec.models.exact import merge_exact
    from lcodec.models.wavelet import WaveletPacket1d, WaveletPacket2d

    g = torch.Generator().manual_seed(3)
    cases = [(WaveletPacket1d, "sym8", (1, 3000)), (WaveletPacket1d, "haar", (64, 40)), (WaveletPacket1d, "sym8", (3, 9)),
             (WaveletPacket2d, "sym4", (3, 12, 17)), (WaveletPacket2d, "haar", (8, 5, 6))]
    for packet, wavelet, (channels, *size) in cases:
        wpt = packet(1, wavelet)
        bank = torch.round(wpt.bank.double() * 2**20)
        y = torch.randint(-2**25, 2**25 + 1, (2, 2 * channels, *size), generator=g).double()
        for axis in range(2, y.dim()):
            assert torch.equal(merge_exact(y, bank, axis), wpt.merge(y, axis, bank)), (wavelet, size, axis)


def test_int_conv_refuses_a_layer_too_wide_for_exact_sums():
    from lcodec.errors import ModelError

    with pytest.raises(ModelError, match="too large for exact"):
        IntConv(np.ones((1, 4096, 3, 3)), None, ACT_BITS, dims=2, padding=1)


def test_gelu_table_is_gelu_to_half_a_step_and_pinned():
    s = 2.0**ACT_BITS
    x = torch.arange(-GELU_RANGE - 50, GELU_RANGE + 51, dtype=torch.float64)
    got = exact_gelu(x) / s
    assert float((got - F.gelu(x / s)).abs().max()) <= 0.5 / s + 1e-12
    # the table decides every decoded pixel: the same on every machine
    assert hashlib.sha256(gelu_table().numpy().tobytes()).hexdigest() == GELU_SHA256


GELU_SHA256 = "51fae7634330a0d471ceb2109f2c038f5b3f0ff39118a0b3028f6cecc0b69cc5"


def test_gelu_beyond_its_table_is_the_identity_above_and_zero_below_in_place_or_not():
    """Past |a| = 8 (the table's range) GELU is a or 0 to within 1e-14, so the integer GELU must give
    exactly a and 0 there; the in-place variant writes the same values into its input."""
    big = torch.tensor([-3.0 * GELU_RANGE, -GELU_RANGE - 1.0, 5.0, GELU_RANGE + 1.0, 2.5 * GELU_RANGE], dtype=torch.float64)
    want = torch.tensor([0.0, 0.0, float(gelu_table()[GELU_RANGE + 5]), GELU_RANGE + 1.0, 2.5 * GELU_RANGE],
                        dtype=torch.float64)
    assert torch.equal(exact_gelu(big), want)
    for x in (big.clone(), torch.zeros(10, dtype=torch.float64)[::2].copy_(big)):  # contiguous, strided
        assert torch.equal(exact_gelu(x, inplace=True), want) and torch.equal(x, want)


def test_exact_resampling_follows_torchaudio_and_reaches_the_length():
    from lcodec.models.exact import exact_resample
    from lcodec.models.transforms import resample

    x = (torch.rand(1, 2, 4800, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.9
    for rate in (44100, 22050, 16000, 8000):
        n = -(-4800 * rate // 48000)
        got = exact_resample(x, 48000, rate, n)
        assert got.shape == (1, 2, n)
        assert float((got - resample(x, 48000, rate, n)).abs().max()) < 2e-5  # well under 1/32768
    assert exact_resample(x, 48000, 44101, 10) is None  # a huge kernel: the caller resamples in float

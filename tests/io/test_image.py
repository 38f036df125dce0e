import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.errors import InputError
from lcodec.io.image import read_image, read_image_info, write_image
from tests.conftest import FIXTURES

PHOTO = FIXTURES / "coffee_481x321.png"


def test_rgb_photo(tmp_path):
    x = read_image(PHOTO)
    assert x.shape == (3, 321, 481) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1


def test_policy_grayscale_rgba_16bit_jpeg(tmp_path):
    rgb = Image.open(PHOTO)
    rgb.convert("L").save(tmp_path / "g.png")
    g, info = read_image_info(tmp_path / "g.png")
    assert g.shape == (3, 321, 481) and torch.equal(g[0], g[2]) and not info.dropped_alpha

    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(tmp_path / "a.png")
    a, info = read_image_info(tmp_path / "a.png")
    assert info.dropped_alpha and torch.equal(a, read_image(PHOTO))  # colour kept, alpha dropped

    gray16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(gray16).save(tmp_path / "d.png")
    d, info = read_image_info(tmp_path / "d.png")
    assert info.bit_depth == 16
    torch.testing.assert_close(d[0], g[0], atol=1e-6, rtol=0)

    rgb.save(tmp_path / "j.jpg", quality=95)
    assert read_image(tmp_path / "j.jpg").shape == (3, 321, 481)


def test_write_round_trip_is_exact_for_8bit(tmp_path):
    x = read_image(PHOTO)
    out = tmp_path / "o.png"
    out.write_bytes(write_image(out, x))
    assert torch.equal(read_image(out), x)


def test_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)
    with pytest.raises(InputError, match="suffix"):
        write_image(tmp_path / "x.nope", torch.zeros(3, 2, 2))

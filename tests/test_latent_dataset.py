"""LatentDataset: real cached streams, cache reuse, exact latents, labels, stale-cache re-encoding."""
import copy
import json
import warnings

import pytest
import torch

import lcodec
from lcodec.data import LatentDataset, StaleCacheWarning
from lcodec.errors import InputError
from tests.conftest import SHARED_DATA

MNIST = SHARED_DATA / "mnist"
CROPS = ((0, 0, 48, 64), (100, 200, 33, 17), (150, 37, 64, 64), (300, 400, 21, 81))  # top, left, H, W


class ListDataset(torch.utils.data.Dataset):
    """A map-style dataset over a list of items."""

    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


@pytest.fixture(scope="module")
def crops(photo) -> list[tuple[torch.Tensor, int, str]]:
    """Four odd-sized crops of the coffee photo, each (3, H, W) with an int and a str label."""
    return [
        (photo[0, :, t: t + h, l: l + w].contiguous(), k, f"crop{k}")
        for k, (t, l, h, w) in enumerate(CROPS)
    ]


class CountingCodec:
    """Wraps a codec (the LatentCodec protocol) and counts ``compress`` calls."""

    def __init__(self, codec) -> None:
        self.codec, self.calls = codec, 0
        self.name, self.quality, self.weights_hash = codec.name, codec.quality, codec.weights_hash

    def compress(self, x: torch.Tensor) -> bytes:
        self.calls += 1
        return self.codec.compress(x)

    def decompress_latents(self, data: bytes):
        return self.codec.decompress_latents(data)


def build(dataset, codec, cache_dir, **kwargs) -> LatentDataset:
    return LatentDataset(dataset, codec, cache_dir, progress=False, **kwargs)


def stream_mtimes(ds: LatentDataset) -> list[int]:
    return [ds.stream_path(i).stat().st_mtime_ns for i in range(len(ds))]


def test_cache_holds_real_streams_and_a_manifest(crops, codec, tmp_path):
    ds = build(ListDataset(crops), codec, tmp_path / "cache")
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    sizes = [ds.stream_path(i).stat().st_size for i in range(len(crops))]
    assert manifest["codec"] == "walloc-rgb" and manifest["quality"] == codec.quality
    assert manifest["weights_hash"] == codec.weights_hash.hex()
    assert manifest["num_items"] == len(crops) and manifest["item_bytes"] == sizes
    assert ds.bytes_on_disk == sum(sizes)
    assert ds.bits_per_pixel == pytest.approx(8 * sum(sizes) / sum(h * w for _, _, h, w in CROPS))
    for i, (image, _, _) in enumerate(crops):
        data = ds.stream_path(i).read_bytes()
        decoded = lcodec.decompress(data)
        assert decoded.shape == (1, *image.shape)
        assert torch.equal(decoded, codec.decompress(codec.compress(image.unsqueeze(0))))


def test_items_are_the_codecs_latents_with_labels(crops, codec, tmp_path):
    ds = build(ListDataset(crops), codec, tmp_path)
    for i, (image, label, name) in enumerate(crops):
        z, got_label, got_name = ds[i]
        expected = codec.encode_latents(image.unsqueeze(0))[0]  # (64, ceil(H/16), ceil(W/16))
        assert z.dtype == torch.float32 and z.shape == expected.shape
        assert torch.equal(z, expected.float())
        assert (got_label, got_name) == (label, name)
    assert ds.item_sizes == tuple(tuple(image.shape[1:]) for image, _, _ in crops)


def test_second_construction_reuses_the_streams(crops, codec, tmp_path):
    counting = CountingCodec(codec)
    first = build(ListDataset(crops), counting, tmp_path)
    assert counting.calls == first.encoded_items == len(crops)
    before = stream_mtimes(first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = build(ListDataset(crops), counting, tmp_path)
    assert counting.calls == len(crops) and second.encoded_items == 0
    assert stream_mtimes(second) == before
    assert all(torch.equal(first[i][0], second[i][0]) for i in range(len(crops)))


def test_changed_weights_hash_reencodes_with_a_warning(crops, codec, tmp_path):
    other = copy.deepcopy(codec)
    other.weights_hash = bytes(range(32))
    build(ListDataset(crops), other, tmp_path)
    with pytest.warns(StaleCacheWarning, match=r"weights 000102030405.*re-encoding"):
        ds = build(ListDataset(crops), codec, tmp_path)
    assert ds.encoded_items == len(crops)
    assert json.loads((tmp_path / "manifest.json").read_text())["weights_hash"] == codec.weights_hash.hex()
    for i in range(len(crops)):
        assert torch.equal(ds[i][0], codec.encode_latents(crops[i][0].unsqueeze(0))[0].float())
    with pytest.warns(StaleCacheWarning, match="weights"):
        build(ListDataset(crops), other, tmp_path)


def test_incomplete_or_resized_cache_is_reencoded(crops, codec, tmp_path):
    ds = build(ListDataset(crops), codec, tmp_path)
    ds.stream_path(2).unlink()
    with pytest.warns(StaleCacheWarning, match="000002.bin is missing"):
        build(ListDataset(crops), codec, tmp_path)
    with pytest.warns(StaleCacheWarning, match="holds 4 items, the dataset has 2"):
        smaller = build(ListDataset(crops[:2]), codec, tmp_path)
    assert len(smaller) == 2
    assert sorted(p.name for p in (tmp_path / "streams").iterdir()) == ["000000.bin", "000001.bin"]


def test_grayscale_is_repeated_and_bare_images_stay_bare(crops, codec, tmp_path):
    gray = crops[2][0].mean(dim=0, keepdim=True)  # (1, H, W)
    ds = build(ListDataset([gray]), codec, tmp_path, transform=lambda z: z / 8)
    z = ds[0]
    assert isinstance(z, torch.Tensor)
    assert torch.equal(z, codec.encode_latents(gray.expand(1, 3, -1, -1)).float()[0] / 8)


@pytest.mark.parametrize(
    "item, message",
    [
        (torch.rand(2, 16, 16), r"item 0: expected an image \(C, H, W\) with C = 1 or 3, got shape \(2, 16, 16\)"),
        (torch.rand(16, 16), r"got shape \(16, 16\)"),
        (torch.rand(3, 0, 16), "empty image"),
        ((torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8), 1), "divide 8-bit images by 255"),
        (torch.full((3, 8, 8), 1.5), r"must lie in \[0, 1\]"),
        ({"image": torch.rand(3, 8, 8)}, r"tuple \(image, label, ...\)"),
        ((torch.rand(3, 8, 8), object()), "item 0 field 1 is a object"),
    ],
)
def test_bad_items_raise_input_error(item, message, codec, tmp_path):
    with pytest.raises(InputError, match=message):
        build(ListDataset([item]), codec, tmp_path)


def test_out_of_range_index_raises_index_error(crops, codec, tmp_path):
    ds = build(ListDataset(crops[:1]), codec, tmp_path)
    assert torch.equal(ds[-1][0], ds[0][0])
    with pytest.raises(IndexError):
        ds[1]
    assert len(list(iter(ds))) == 1


def test_mnist_digits(codec, tmp_path):
    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test set not present at {MNIST}; the crop tests cover the same paths")
    from lcodec.eval.tasks.mnist import load_mnist

    mnist = load_mnist(MNIST)
    digits = torch.from_numpy(mnist.images[:6]).float().div(255).unsqueeze(1)  # (6, 1, 28, 28)
    items = [(digits[i], mnist.labels[i]) for i in range(6)]
    ds = build(ListDataset(items), codec, tmp_path)
    expected = codec.encode_latents(digits.expand(-1, 3, -1, -1)).float()  # (6, 64, 2, 2)
    for i in range(6):
        z, label = ds[i]
        assert z.shape == (64, 2, 2) and torch.equal(z, expected[i])
        assert label == int(mnist.labels[i]) and type(label) is int
        assert lcodec.decompress(ds.stream_path(i).read_bytes()).shape == (1, 3, 28, 28)
    assert ds.bits_per_pixel == pytest.approx(8 * ds.bytes_on_disk / (6 * 28 * 28))

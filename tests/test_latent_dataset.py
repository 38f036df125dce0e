"""LatentDataset: real cached streams, cache reuse, exact latents, labels, stale-cache re-encoding."""
import copy
import json
import multiprocessing
import warnings
from pathlib import Path

import pytest
import torch

import lcodec
from lcodec.data import LatentDataset, StaleCacheWarning
from lcodec.errors import InputError
from tests.conftest import SHARED_DATA, skip_without_shared

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
    """Wraps a codec (the LatentCodec protocol) and counts ``compress`` calls and items."""

    def __init__(self, codec) -> None:
        self.codec, self.calls, self.items = codec, 0, 0
        self.name, self.quality, self.weights_hash = codec.name, codec.quality, codec.weights_hash

    def compress(self, x: torch.Tensor) -> bytes:
        self.calls += 1
        self.items += x.shape[0]
        return self.codec.compress(x)

    def decompress_latents(self, data: bytes):
        return self.codec.decompress_latents(data)


def build(dataset, codec, cache_dir, **kwargs) -> LatentDataset:
    return LatentDataset(dataset, codec, cache_dir, progress=False, **kwargs)


def shard_mtimes(cache) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(cache.glob("shard-*.bin"))}


def test_cache_holds_real_streams_batched_and_a_manifest(crops, codec, tmp_path):
    same = [(crops[0][0][:, :32, :32].contiguous(), k, "x") for k in range(5)]  # 5 items of one size
    items = same + crops  # then four odd sizes: one batch each
    ds = build(ListDataset(items), codec, tmp_path / "cache", batch_size=3)
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["codec"] == "walloc-rgb" and manifest["quality"] == codec.quality
    assert manifest["weights_hash"] == codec.weights_hash.hex() and manifest["num_items"] == 9
    assert [b[3:] for b in manifest["batches"]] == [[0, 3], [3, 2], [5, 1], [6, 1], [7, 1], [8, 1]]
    assert ds.bytes_on_disk == sum(b[2] for b in manifest["batches"]) == sum(n for _, n in manifest["shards"])
    assert ds.bits_per_pixel == pytest.approx(8 * ds.bytes_on_disk / sum(im.shape[1] * im.shape[2] for im, *_ in items))
    for i, (image, _, _) in enumerate(items):
        path, offset, length, k = ds.stream_location(i)
        data = ds.stream(i)  # a complete stream: the item's whole batch
        assert path.read_bytes()[offset : offset + length] == data
        z, _ = codec.decompress_latents(data)
        assert torch.equal(z[k], codec.encode_latents(image.unsqueeze(0))[0])  # the item's own latents, exactly
        decoded = lcodec.decompress(data)  # float synthesis: a batch may round differently from one image
        assert decoded.shape[1:] == image.shape
        assert torch.allclose(decoded[k], codec.decompress(codec.compress(image.unsqueeze(0)))[0], atol=1e-5)


def test_items_are_the_codecs_latents_with_labels(crops, codec, tmp_path):
    ds = build(ListDataset(crops), codec, tmp_path)
    for i, (image, label, name) in enumerate(crops):
        z, got_label, got_name = ds[i]
        expected = codec.encode_latents(image.unsqueeze(0))[0]  # (64, ceil(H/16), ceil(W/16))
        assert z.dtype == torch.float32 and z.shape == expected.shape
        assert torch.equal(z, expected.float())
        assert (got_label, got_name) == (label, name)
        # what the dataset serves decodes with the codec, batch dimension or not
        assert torch.equal(codec.decode_latents(z, size=image.shape[1:]),
                           codec.decode_latents(z[None], size=image.shape[1:])[0])
    assert ds.item_sizes == tuple(tuple(image.shape[1:]) for image, _, _ in crops)


def test_second_construction_reuses_the_streams(crops, codec, tmp_path):
    counting = CountingCodec(codec)
    first = build(ListDataset(crops), counting, tmp_path)
    assert counting.items == first.encoded_items == len(crops)
    before = shard_mtimes(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = build(ListDataset(crops), counting, tmp_path)
    assert counting.items == len(crops) and second.encoded_items == 0
    assert shard_mtimes(tmp_path) == before
    assert all(torch.equal(first[i][0], second[i][0]) for i in range(len(crops)))


def test_other_data_in_a_used_cache_is_never_served(crops, codec, tmp_path):
    """Issue 31's bar: a different dataset of the same length built into a used cache folder
    is re-encoded (with a warning), and serves its own latents and labels, never the old ones."""
    build(ListDataset(crops), codec, tmp_path)
    other = [(crops[(i + 1) % 4][0], 100 + i, f"other{i}") for i in range(4)]
    with pytest.warns(StaleCacheWarning, match="4 of 4 items differ"):
        ds = build(ListDataset(other), codec, tmp_path)
    assert ds.encoded_items == 4
    for i, (image, label, name) in enumerate(other):
        z, got_label, got_name = ds[i]
        assert (got_label, got_name) == (label, name)
        assert torch.equal(z, codec.encode_latents(image.unsqueeze(0))[0].float())
    # the same images with one changed label: that alone makes the cache stale
    relabelled = [*other[:3], (other[3][0], 7, other[3][2])]
    with pytest.warns(StaleCacheWarning, match="1 of 4 items differ .*item 3"):
        assert build(ListDataset(relabelled), codec, tmp_path)[3][1] == 7


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
    build(ListDataset(crops), codec, tmp_path)
    (tmp_path / "shard-00000.bin").write_bytes(b"cut")
    with pytest.warns(StaleCacheWarning, match="shard-00000.bin is missing or not the size"):
        build(ListDataset(crops), codec, tmp_path)
    with pytest.warns(StaleCacheWarning, match="holds 4 items, the dataset has 2"):
        smaller = build(ListDataset(crops[:2]), codec, tmp_path)
    assert len(smaller) == 2
    (tmp_path / "manifest.json").unlink()
    with pytest.warns(StaleCacheWarning, match="interrupted"):
        build(ListDataset(crops[:2]), codec, tmp_path)


class InterruptedAt(ListDataset):
    """A dataset whose read of item ``at`` is interrupted (Ctrl-C)."""

    def __init__(self, items: list, at: int) -> None:
        super().__init__(items)
        self.at = at

    def __getitem__(self, index: int):
        if index == self.at:
            raise KeyboardInterrupt
        return super().__getitem__(index)


def test_interrupted_build_leaves_no_shard_and_no_manifest(crops, codec, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        build(InterruptedAt(crops, 3), codec, tmp_path, batch_size=1)
    assert not (tmp_path / "manifest.json").exists() and not list(tmp_path.glob("*shard*"))


def test_tensors_and_in_memory_modes_agree(codec, tmp_path):
    g = torch.Generator().manual_seed(0)
    items = [(torch.rand(3, 20, 24, generator=g), i % 3, torch.tensor([i, -i])) for i in range(7)]
    ds = build(ListDataset(items), codec, tmp_path / "a", batch_size=4)
    z, labels, pairs = ds.tensors()
    assert z.shape == (7, 64, 2, 2) and z.dtype == torch.float32
    assert torch.equal(labels, torch.tensor([i % 3 for i in range(7)]))
    assert torch.equal(pairs, torch.stack([torch.tensor([i, -i]) for i in range(7)]))
    lean = build(ListDataset(items), codec, tmp_path / "a", batch_size=4, in_memory=False)
    assert all(torch.equal(lean[i][0], z[i]) for i in (6, 0, 3))
    assert len(lean._decoded) == 1  # one batch held at a time
    with pytest.raises(InputError, match="one size"):
        build(ListDataset(items + [(torch.rand(3, 8, 8), 0, torch.tensor([0, 0]))]), codec, tmp_path / "b").tensors()


def test_normalize_uses_the_codecs_shipped_statistics(crops, codec, tmp_path):
    from lcodec.data import latent_stats

    mean, std = latent_stats(codec)
    assert mean.shape == std.shape == (64,) and (std > 0).all()
    # one scale for every channel: the RMS of the shipped per-channel deviations
    shipped = json.loads((Path(lcodec.__file__).parent / "weights" / "latent_stats.json").read_text())
    per_channel = torch.tensor(shipped[f"walloc-rgb/q{codec.quality}"]["std"], dtype=torch.float64)
    assert torch.allclose(std, torch.full((64,), float(per_channel.pow(2).mean().sqrt())))
    assert torch.equal(mean, torch.tensor(shipped[f"walloc-rgb/q{codec.quality}"]["mean"]))
    plain = build(ListDataset(crops), codec, tmp_path)
    norm = build(ListDataset(crops), codec, tmp_path, normalize=True)
    assert norm.encoded_items == 0  # the same cache: normalisation happens on reading
    assert torch.allclose(norm[1][0], (plain[1][0] - mean[:, None, None]) / std[:, None, None])
    other = copy.deepcopy(codec)
    other.weights_hash = bytes(32)
    with pytest.raises(lcodec.ModelError, match="other weights"):
        build(ListDataset(crops), other, tmp_path / "o", normalize=True)


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
        ((torch.randint(0, 255, (3, 8, 8), dtype=torch.int32), 1), "uint8"),
        (torch.full((3, 8, 8), 1.5), r"must lie in \[0, 1\]"),
        (torch.full((3, 8, 8), 255.0), "divide 8-bit values by 255"),
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
    skip_without_shared(MNIST / "t10k-images-idx3-ubyte.gz")  # the crop tests cover the same paths
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
        assert lcodec.decompress(ds.stream(i)).shape == (6, 3, 28, 28)  # the six digits share a container
    assert ds.bits_per_pixel == pytest.approx(8 * ds.bytes_on_disk / (6 * 28 * 28))


def test_codec_entry_points_share_one_input_contract(crops, codec, tmp_path):
    """Issue 31: gray expanded to RGB, uint8 converted, floats outside [0, 1] refused with a clear
    error, with or without a batch dimension, in encode_latents, compress and LatentDataset alike."""
    image = crops[2][0]  # (3, 64, 64)
    gray = image.mean(dim=0, keepdim=True)
    rgb_gray = gray.expand(3, -1, -1)
    z = codec.encode_latents(rgb_gray[None])
    assert torch.equal(codec.encode_latents(gray[None]), z) and torch.equal(codec.encode_latents(gray), z)
    assert codec.compress(gray[None]) == codec.compress(rgb_gray[None])
    u8 = torch.round(image * 255).to(torch.uint8)
    assert codec.compress(u8) == codec.compress(u8.float() / 255)
    assert torch.equal(build(ListDataset([u8]), codec, tmp_path)[0], codec.encode_latents(u8[None])[0].float())
    for entry in (codec.compress, codec.encode_latents):
        with pytest.raises(InputError, match=r"\[0, 1\].*divide 8-bit values by 255"):
            entry(image[None] * 255)
        with pytest.raises(InputError, match=r"\[0, 1\]"):
            entry(image[None] - 0.5)


def test_variable_sizes_pad_collate_buckets_and_crops(crops, codec, tmp_path):
    from lcodec.data import SizeBuckets, latent_crop, pad_collate

    items = [crops[0], crops[1], crops[0], crops[3]]
    ds = build(ListDataset(items), codec, tmp_path)
    z, mask, labels, names = pad_collate([ds[i] for i in range(4)])
    shapes = [ds[i][0].shape for i in range(4)]
    assert z.shape == (4, 64, max(s[1] for s in shapes), max(s[2] for s in shapes))
    for i, s in enumerate(shapes):
        assert torch.equal(z[i, :, : s[1], : s[2]], ds[i][0]) and z[i, :, s[1]:].abs().sum() == 0
        assert mask[i].sum() == s[1] * s[2] and mask[i, : s[1], : s[2]].all()
    assert labels.tolist() == [0, 1, 0, 3] and list(names) == ["crop0", "crop1", "crop0", "crop3"]
    sampler = SizeBuckets(ds.item_sizes, batch_size=2, seed=1)
    batches = list(sampler)
    assert sorted(sorted(b) for b in batches) == [[0, 2], [1], [3]] and len(sampler) == 3
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler)
    assert sorted(b[0].shape[0] for b in loader) == [1, 1, 2]
    c = latent_crop(ds[0][0], 1, 1, 2, 2)
    assert torch.equal(c, ds[0][0][:, 1:3, 1:3])
    with pytest.raises(InputError, match="outside"):
        latent_crop(ds[0][0], 0, 0, 99, 1)


def test_workers_write_the_same_cache_as_one_process(crops, codec, tmp_path):
    """Batches compressed in 2 forked processes give the same shards and manifest bytes as one
    process (order kept), and the same items; an interrupted parallel build leaves nothing."""
    same = [(crops[0][0][:, :32, :32].contiguous(), k, "x") for k in range(7)]
    items = same + crops
    one = build(ListDataset(items), codec, tmp_path / "one", batch_size=2)
    two = build(ListDataset(items), codec, tmp_path / "two", batch_size=2, workers=2)
    for name in ["manifest.json", *[p.name for p in (tmp_path / "one").glob("shard-*.bin")]]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert len(json.loads((tmp_path / "two" / "manifest.json").read_text())["batches"]) == 8  # 4 + 4 odd sizes
    for i in range(len(items)):
        assert torch.equal(one[i][0], two[i][0]) and one[i][1:] == two[i][1:]

    with pytest.raises(KeyboardInterrupt):
        build(InterruptedAt(items, 9), codec, tmp_path / "broken", batch_size=2, workers=2)
    assert not (tmp_path / "broken" / "manifest.json").exists() and not list((tmp_path / "broken").glob("*shard*"))
    assert not multiprocessing.active_children()  # the worker processes were shut down
    with pytest.raises(InputError, match="workers"):
        build(ListDataset(items), codec, tmp_path / "bad", workers=0)

"""Training data: random crops from a folder of photos or audio clips, held in memory."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lcodec.errors import InputError
from lcodec.io.audio import AUDIO_SUFFIXES, read_audio
from lcodec.io.image import IMAGE_SUFFIXES, read_image

__all__ = ["ImageCropDataset", "random_crops", "AudioCropDataset", "list_images", "list_audio", "make_dataset"]


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"data folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def random_crops(files: list[Path], size: int, rng) -> Iterator[torch.Tensor]:
    """Endless random ``size`` x ``size`` RGB crops (3, size, size) uint8 of image files, drawn with
    ``rng`` (a ``random.Random``; the caller may draw from it between crops); files smaller than
    the crop are skipped."""
    if not any(min(Image.open(f).size) >= size for f in files):  # header reads only
        raise InputError(f"no image of at least {size}x{size} pixels to crop from")
    while True:
        img = Image.open(rng.choice(files)).convert("RGB")
        if min(img.size) < size:
            continue
        left, top = rng.randrange(img.size[0] - size + 1), rng.randrange(img.size[1] - size + 1)
        yield torch.from_numpy(np.array(img.crop((left, top, left + size, top + size)))).permute(2, 0, 1)


class ImageCropDataset(Dataset):
    """Random ``crop``x``crop`` RGB crops with random flips; ``length`` samples per epoch.

    Images smaller than the crop are padded by reflection. All images are decoded once
    and kept as uint8 (the 340 training photos take about 170 MB).
    """

    def __init__(self, folder: str | Path, crop: int = 256, length: int = 10_000, seed: int = 0) -> None:
        self.images = [(read_image(p) * 255).round().to(torch.uint8) for p in list_images(folder)]
        self.crop = crop
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, i))
        img = self.images[rng.integers(len(self.images))]
        _, h, w = img.shape
        if h < self.crop or w < self.crop:
            ph, pw = max(0, self.crop - h), max(0, self.crop - w)
            img = torch.nn.functional.pad(img[None].float(), (0, pw, 0, ph), mode="reflect")[0].to(torch.uint8)
            _, h, w = img.shape
        top, left = rng.integers(h - self.crop + 1), rng.integers(w - self.crop + 1)
        x = img[:, top : top + self.crop, left : left + self.crop].float() / 255.0
        if rng.random() < 0.5:
            x = x.flip(-1)
        if rng.random() < 0.5:
            x = x.flip(-2)
        return x


def list_audio(folder: str | Path, include: tuple[str, ...] = ()) -> list[Path]:
    """Audio files in ``folder`` (only the names in ``include`` when it is given)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"data folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if include:
        missing = sorted(set(include) - {p.name for p in files})
        if missing:
            raise InputError(f"{folder} lacks the recipe's training files: {', '.join(missing)}")
        files = [p for p in files if p.name in include]
    if not files:
        raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}")
    return files


class AudioCropDataset(Dataset):
    """Random ``crop``-sample stereo segments at ``sample_rate``, with augmentation.

    Clips are resampled once to the model rate and kept in memory (mono clips are
    duplicated to two channels). Each sample draws a clip uniformly, a random offset, a
    gain between -12 and +3 dB (limited so the peak stays below 1), a random channel swap
    and polarity, and with probability ``mono_prob`` a mono downmix (L = R), so the model
    also sees the mono case it codes without a side channel.
    """

    def __init__(self, folder: str | Path, crop: int = 32768, sample_rate: int = 48000, include: tuple[str, ...] = (),
                 length: int = 10_000, seed: int = 0, mono_prob: float = 0.15) -> None:
        from torchaudio.functional import resample

        self.clips = []
        for p in list_audio(folder, include):
            x, rate = read_audio(p)
            if rate != sample_rate:
                x = resample(x, rate, sample_rate)
            if x.shape[0] == 1:
                x = x.expand(2, -1)
            if x.shape[0] != 2:
                raise InputError(f"{p}: {x.shape[0]} channels; training uses mono or stereo clips")
            if x.shape[1] < crop:
                x = torch.nn.functional.pad(x, (0, crop - x.shape[1]))
            self.clips.append(x.contiguous())
        self.crop, self.length, self.seed, self.mono_prob = crop, length, seed, mono_prob

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, i))
        clip = self.clips[rng.integers(len(self.clips))]
        start = rng.integers(clip.shape[1] - self.crop + 1)
        x = clip[:, start : start + self.crop].clone()
        if rng.random() < 0.5:
            x = x.flip(0)
        if rng.random() < self.mono_prob:
            x = x.mean(0, keepdim=True).expand(2, -1).clone()
        gain = 10 ** (rng.uniform(-12, 3) / 20) * (1 if rng.random() < 0.5 else -1)
        peak = float(x.abs().max())
        if peak > 0:
            gain = np.sign(gain) * min(abs(gain), 0.99 / peak)
        return x * float(gain)


def make_dataset(codec, folder: str | Path, crop: int, seed: int, include: tuple[str, ...] = ()) -> Dataset:
    """The training dataset for ``codec``'s modality (``crop`` is pixels per side or samples)."""
    if codec.modality == "image":
        if include:
            raise InputError("image recipes train on the whole folder; 'include' is for audio clips")
        return ImageCropDataset(folder, crop=crop, length=2**62, seed=seed)
    if codec.modality == "audio":
        return AudioCropDataset(folder, crop=crop, sample_rate=codec.sample_rate, include=include,
                                length=2**62, seed=seed)
    raise InputError(f"no training data pipeline for modality {codec.modality!r}")

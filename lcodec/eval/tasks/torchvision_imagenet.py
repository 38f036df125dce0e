"""``imagenet-classifier``: torchvision's pretrained ResNet-50, top-1 on an ImageNet-style folder.

Model: ``resnet50(weights=ResNet50_Weights.IMAGENET1K_V2)`` with the preprocessing its
weights prescribe (resize 232, centre crop 224, ImageNet mean/std), applied to each image
*after* coding, so codecs see images at their stored resolution.

Data (``--data DIR``): one sub-folder per class, read with ``torchvision.datasets.ImageFolder``.
Class folders map to ResNet-50 outputs by:
  - all 1,000 synset folders (``n01440764`` ...): sorted order, the usual ImageNet convention;
  - otherwise each folder named by class index (``0``-``999``) or by category name
    (``ResNet50_Weights.IMAGENET1K_V2.meta["categories"]``, e.g. ``tench``).
``items(limit)`` takes images round-robin over classes, so a small limit still spans them.

The weights are never downloaded here: they must already be in the torch hub cache.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from lcodec.errors import InputError
from lcodec.eval.adapters import MediaItem
from lcodec.eval.mpq import Task, cached_checkpoint, check_limit, register_task

__all__ = ["ImagenetClassifierTask", "class_indexes"]

_NUM_CLASSES = 1000


def _weights():
    from torchvision.models import ResNet50_Weights

    return ResNet50_Weights.IMAGENET1K_V2


def class_indexes(folders: Sequence[str], categories: Sequence[str]) -> list[int]:
    """ResNet-50 output index of each class folder name (see the module docstring)."""
    if len(folders) == _NUM_CLASSES:
        return list(range(_NUM_CLASSES))
    by_name = {c: i for i, c in enumerate(categories)}
    out = []
    for name in folders:
        if name.isdigit() and int(name) < _NUM_CLASSES:
            out.append(int(name))
        elif name in by_name:
            out.append(by_name[name])
        else:
            raise InputError(
                f"class folder {name!r} is neither an index 0-999 nor an ImageNet category name; "
                "use all 1000 synset folders, or name folders by index or by category"
            )
    return out


@register_task("imagenet-classifier")
class ImagenetClassifierTask(Task):
    """Top-1 accuracy of torchvision's ResNet-50 (IMAGENET1K_V2) on decoded images."""

    name = "imagenet-classifier"
    modality = "image"
    metric_name = "top1"
    higher_is_better = True
    batch_size = 32

    def __init__(self, data: Path | None = None) -> None:
        weights = _weights()
        cached_checkpoint(weights.url, "torchvision ResNet-50 (IMAGENET1K_V2)")
        if data is None or not data.is_dir():
            raise InputError(f"{self.name} needs an ImageNet-style folder with one sub-folder per class (--data DIR)")
        from torchvision.datasets import ImageFolder

        try:
            folder = ImageFolder(str(data))
        except (FileNotFoundError, OSError) as exc:
            raise InputError(f"{data}: not an ImageNet-style folder ({exc})") from None
        to_output = class_indexes(folder.classes, weights.meta["categories"])
        per_class: dict[int, list[tuple[str, int]]] = {}
        for path, target in folder.samples:
            per_class.setdefault(target, []).append((path, to_output[target]))
        rounds = max(len(v) for v in per_class.values())
        self._samples = [v[r] for r in range(rounds) for _, v in sorted(per_class.items()) if r < len(v)]
        self._model = None

    def items(self, limit: int | None = None) -> list[MediaItem]:
        from lcodec.io.image import read_image

        n = check_limit(limit, len(self._samples))
        return [MediaItem(Path(p).name, "image", read_image(p).unsqueeze(0)) for p, _ in self._samples[:n]]

    def _classifier(self) -> torch.nn.Module:
        if self._model is None:
            from torchvision.models import resnet50

            cached_checkpoint(_weights().url, "torchvision ResNet-50 (IMAGENET1K_V2)")
            self._model = resnet50(weights=_weights()).eval()
        return self._model

    @torch.inference_mode()
    def score(self, decoded: Sequence[torch.Tensor]) -> float:
        n = len(decoded)
        if not 0 < n <= len(self._samples):
            raise InputError(f"{self.name} scores 1 to {len(self._samples)} images, got {n}")
        preprocess = _weights().transforms()
        model = self._classifier()
        targets = torch.tensor([t for _, t in self._samples[:n]])
        correct = 0
        for i in range(0, n, self.batch_size):
            chunk = decoded[i: i + self.batch_size]
            x = torch.stack([preprocess((torch.round(d.clamp(0, 1) * 255) / 255)[0]) for d in chunk])
            correct += int((model(x).argmax(dim=1) == targets[i: i + len(chunk)]).sum())
        return correct / n

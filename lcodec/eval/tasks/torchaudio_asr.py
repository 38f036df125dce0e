"""``librispeech-asr``: torchaudio's wav2vec 2.0 ASR model, word error rate on a speech folder.

Model: ``torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H`` (Baevski et al. 2020, fine-tuned on
LibriSpeech 960 h), greedy CTC decoding. Decoded audio is mixed to mono and resampled to
the model's 16 kHz before recognition.

Data (``--data DIR``, searched recursively): audio files (.flac, .wav, .ogg) with their
transcripts either in LibriSpeech ``*.trans.txt`` files beside them (lines ``ID TEXT``) or
in a ``<name>.txt`` next to ``<name>.flac``. Transcripts are compared upper-cased with
punctuation other than apostrophes removed.

Metric: corpus WER = total word edits / total reference words (lower is better). The
relative score compares word accuracies, ``max(0, 1 - WER)``, so "keeps 99 %" means the
decoded audio loses at most 1 % of the words the model got right on the originals.

The weights are never downloaded here: they must already be in the torch hub cache.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch

from lcodec.errors import InputError
from lcodec.eval.adapters import MediaItem
from lcodec.eval.mpq import Task, cached_checkpoint, check_limit, register_task

__all__ = [
    "AUDIO_SUFFIXES",
    "LibrispeechAsrTask",
    "edit_distance",
    "word_error_rate",
    "ctc_greedy_decode",
    "normalize_transcript",
]

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg")
_MODEL_URL_BASE = "https://download.pytorch.org/torchaudio/models/"  # where torchaudio fetches bundles
_WHAT = "torchaudio WAV2VEC2_ASR_BASE_960H"


def _bundle():
    import torchaudio

    return torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H


def _bundle_url() -> str:
    path = _bundle()._path  # torchaudio keeps the file name private; it is the URL's last part
    return path if path.startswith("https") else _MODEL_URL_BASE + path


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def normalize_transcript(text: str) -> str:
    """Upper case, letters, digits and apostrophes only, single spaces."""
    return " ".join(re.sub(r"[^A-Z0-9' ]+", " ", text.upper()).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: total word edits over total reference words."""
    if len(references) != len(hypotheses):
        raise InputError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(references, hypotheses))
    words = sum(len(r.split()) for r in references)
    if words == 0:
        raise InputError("the reference transcripts hold no words")
    return edits / words


def ctc_greedy_decode(emission: torch.Tensor, labels: Sequence[str], blank: int = 0) -> str:
    """Best path of a CTC emission (T, num_labels): argmax, merge repeats, drop blanks; ``|`` is a space."""
    best = torch.unique_consecutive(emission.argmax(dim=-1)).tolist()
    text = "".join(labels[i] for i in best if i != blank)
    return " ".join(text.replace("|", " ").split())


def _transcripts(folder: Path) -> dict[str, str]:
    """Utterance id -> transcript from every ``*.trans.txt`` under ``folder``."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*.trans.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                key, _, text = line.strip().partition(" ")
                out[key] = text
    return out


@register_task("librispeech-asr")
class LibrispeechAsrTask(Task):
    """Word error rate of wav2vec 2.0 (WAV2VEC2_ASR_BASE_960H) on decoded speech."""

    name = "librispeech-asr"
    modality = "audio"
    metric_name = "wer"
    higher_is_better = False

    def __init__(self, data: Path | None = None) -> None:
        import soundfile

        cached_checkpoint(_bundle_url(), _WHAT)
        if data is None or not data.is_dir():
            raise InputError(f"{self.name} needs a folder of speech files with transcripts (--data DIR)")
        listed = _transcripts(data)
        self._samples: list[tuple[Path, str, int]] = []  # (file, transcript, sample rate)
        for path in sorted(p for p in data.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            beside = path.with_suffix(".txt")
            text = beside.read_text(encoding="utf-8") if beside.is_file() else listed.get(path.stem)
            if text is None:
                continue
            try:
                rate = soundfile.info(str(path)).samplerate
            except (RuntimeError, soundfile.LibsndfileError) as exc:
                raise InputError(f"{path}: not readable audio ({exc})") from None
            self._samples.append((path, normalize_transcript(text), int(rate)))
        if not self._samples:
            raise InputError(f"{data}: no audio files ({', '.join(AUDIO_SUFFIXES)}) with transcripts")
        self._model = None

    def items(self, limit: int | None = None) -> list[MediaItem]:
        import soundfile

        n = check_limit(limit, len(self._samples))
        items = []
        for path, _, rate in self._samples[:n]:
            audio, _ = soundfile.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
            x = torch.from_numpy(audio.T.copy()).unsqueeze(0)  # (1, channels, samples)
            items.append(MediaItem(path.stem, "audio", x, sample_rate=rate))
        return items

    def _recognizer(self) -> torch.nn.Module:
        if self._model is None:
            cached_checkpoint(_bundle_url(), _WHAT)
            self._model = _bundle().get_model().eval()
        return self._model

    def relative(self, score: float, reference: float) -> float:
        """Word accuracy on decoded audio over word accuracy on the originals."""
        acc, ref_acc = max(0.0, 1.0 - score), max(0.0, 1.0 - reference)
        if ref_acc == 0:
            return 1.0
        return acc / ref_acc

    @torch.inference_mode()
    def score(self, decoded: Sequence[torch.Tensor]) -> float:
        import torchaudio

        n = len(decoded)
        if not 0 < n <= len(self._samples):
            raise InputError(f"{self.name} scores 1 to {len(self._samples)} clips, got {n}")
        bundle = _bundle()
        labels = bundle.get_labels()  # ("-", "|", "E", ...): blank first
        model = self._recognizer()
        hypotheses = []
        for audio, (_, _, rate) in zip(decoded, self._samples):
            mono = audio.reshape(-1, audio.shape[-1]).mean(dim=0, keepdim=True)  # (1, samples)
            mono = torchaudio.functional.resample(mono, rate, int(bundle.sample_rate))
            emission, _ = model(mono)  # (1, frames, labels)
            hypotheses.append(ctc_greedy_decode(emission[0], labels))
        return word_error_rate([text for _, text, _ in self._samples[:n]], hypotheses)

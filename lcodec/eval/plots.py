"""Rate-distortion plots (matplotlib, imported lazily)."""
from __future__ import annotations

import math
from pathlib import Path

__all__ = ["rd_plot"]


def rd_plot(curves: list, path: str | Path, references: list = (), title: str | None = None) -> Path:
    """Quality vs rate for every curve; images get a second panel with MS-SSIM in dB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lcodec.eval.harness import PRIMARY, RATE_KEY

    modality = curves[0].modality
    primary = PRIMARY[modality]
    panels = [primary] + (["ms-ssim-rgb"] if modality == "image" else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        for group, style in ((curves, {"marker": "o", "ms": 4}), (references, {"ls": "--", "lw": 1, "alpha": 0.7})):
            for c in group:
                pts = [(r, v) for r, v in zip(c.rate, c.metrics.get(metric, ())) if v is not None]
                if metric == "ms-ssim-rgb":
                    pts = [(r, -10 * math.log10(1 - v)) for r, v in pts if v < 1]
                if pts:
                    kw = dict(style, ms=8, marker="o") if len(pts) == 1 else style
                    ax.plot(*zip(*sorted(pts)), label=c.codec, **kw)
        measured = [r for c in curves for r in c.rate]
        if references and measured:  # published curves span far wider rates: keep ours readable
            ax.set_xlim(0, max(measured) * 1.3)
            ax.relim(visible_only=True)
        ax.set_xlabel(f"{RATE_KEY[modality]} (whole file)")
        ax.set_ylabel(f"{metric} (dB)" if metric != "ms-ssim-rgb" else "MS-SSIM (dB, -10 log10(1 - x))")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

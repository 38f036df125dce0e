"""Rate-distortion plots (matplotlib, imported lazily).

Every curve gets a colour of its own (published reference curves too, drawn dashed), the same
colour in every panel; one legend for the figure sits to the right of the panels, never over a
curve; the rate axis spans the measured curves (published curves that reach further are cut
at its edge, and the quality axis fits what is visible).
"""
from __future__ import annotations

import math
from pathlib import Path

__all__ = ["rd_plot", "rd_figure"]

_X_MARGIN = 1.05  # the rate axis ends 5% past the highest measured rate


def _colours(n: int) -> list:
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:  # the ten strong tab20 colours first (measured curves come first), then their light pairs
        order = [*range(0, 20, 2), *range(1, 20, 2)]
        return [matplotlib.colormaps["tab20"](i) for i in order[:n]]
    return [matplotlib.colormaps["turbo"](i / (n - 1)) for i in range(n)]


def _points(curve, metric: str) -> list[tuple[float, float]]:
    pts = [(r, v) for r, v in zip(curve.rate, curve.metrics.get(metric, ())) if v is not None]
    if metric == "ms-ssim-rgb":
        pts = [(r, -10 * math.log10(1 - v)) for r, v in pts if v < 1]
    return sorted(pts)


def rd_figure(curves: list, references: list = (), title: str | None = None):
    """The figure ``rd_plot`` saves: quality vs rate per curve; images get a second panel (MS-SSIM in dB)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lcodec.eval.harness import PRIMARY, RATE_KEY

    modality = curves[0].modality
    panels = [PRIMARY[modality]] + (["ms-ssim-rgb"] if modality == "image" else [])
    colours = dict(zip([c.codec for c in [*curves, *references]], _colours(len(curves) + len(references))))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels) + 2.6, 4.4), squeeze=False,
                             layout="constrained")
    measured = [r for c in curves for r in c.rate]
    x_max = max(measured) * _X_MARGIN if measured else None
    handles: dict[str, object] = {}
    for ax, metric in zip(axes[0], panels):
        visible: list[float] = []
        for group, style in ((curves, {"marker": "o", "ms": 4}), (references, {"ls": "--", "lw": 1.2})):
            for c in group:
                pts = _points(c, metric)
                if not pts:
                    continue
                kw = dict(style, ms=8, marker="o") if len(pts) == 1 else style
                (line,) = ax.plot(*zip(*pts), label=c.codec, color=colours[c.codec], **kw)
                handles.setdefault(c.codec, line)
                visible += [v for r, v in pts if x_max is None or r <= x_max]
        if x_max is not None:
            ax.set_xlim(0, x_max)
        if visible:
            lo, hi = min(visible), max(visible)
            pad = 0.05 * (hi - lo) or 0.5
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel(f"{RATE_KEY[modality]} (whole file)")
        ax.set_ylabel(f"{metric} (dB)" if metric != "ms-ssim-rgb" else "MS-SSIM (dB, -10 log10(1 - x))")
        ax.grid(alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def rd_plot(curves: list, path: str | Path, references: list = (), title: str | None = None) -> Path:
    """Save ``rd_figure`` to ``path`` (format from the suffix, e.g. .png or .svg)."""
    import matplotlib.pyplot as plt

    fig = rd_figure(curves, references, title)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

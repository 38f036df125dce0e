from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "data"
# the project's real data (../shared/data beside the checkout); LCODEC_SHARED_DATA points elsewhere.
# Tests that need it skip when it is missing, and the run says so at the end (pytest_terminal_summary).
SHARED_DATA = Path(os.environ.get("LCODEC_SHARED_DATA") or ROOT.parent / "shared" / "data")
_SKIP_PREFIX = "shared data not present at"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regenerate-golden", action="store_true", help="rewrite golden bitstream hashes")


def skip_without_shared(path: Path) -> None:
    """Skip the calling test when ``path`` (under SHARED_DATA) is missing, with a reason the summary counts."""
    if not path.exists():
        pytest.skip(f"{_SKIP_PREFIX} {path}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One visible line when data-backed tests were skipped (``-qq`` hides skip reasons)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and _SKIP_PREFIX in str(r.longrepr[2])]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} data-backed tests skipped: no shared data at {SHARED_DATA} "
                                    "(set LCODEC_SHARED_DATA to the folder that holds images/, mnist/, audio/, video/)")


@pytest.fixture(scope="session")
def photo() -> torch.Tensor:
    """A real 481x321 photo, (1, 3, 321, 481) in [0, 1]."""
    from lcodec.io.image import read_image

    return read_image(FIXTURES / "coffee_481x321.png").unsqueeze(0)


@pytest.fixture(scope="session")
def basketball() -> torch.Tensor:
    """The fixture clip: 6 frames of BasketballPass at 96x64, (1, 3, 6, 64, 96) in [0, 1]."""
    from lcodec.io.video import read_video

    return read_video(FIXTURES / "basketball_96x64_6f.y4m")[0].unsqueeze(0)


@pytest.fixture(scope="session")
def codec():
    import lcodec

    return lcodec.load("walloc-rgb")


@pytest.fixture(scope="session")
def shared_images() -> Path:
    folder = SHARED_DATA / "images" / "val"
    skip_without_shared(folder)
    return folder


def reseal(data: bytes) -> bytes:
    """Recompute the trailing CRC32 so a deliberately edited stream reaches the deeper checks."""
    body = data[:-4]
    return body + zlib.crc32(body).to_bytes(4, "little")


def assert_refused_cheaply(decode, data: bytes) -> None:
    """``decode(data)`` must raise BitstreamError from the header alone: within a second and
    without allocating more than 16 MB (a forged geometry must not size any buffer)."""
    import time
    import tracemalloc

    from lcodec.errors import BitstreamError

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(BitstreamError):
            decode(data)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0 and peak < 16 << 20


def set_dims(data: bytes, dims: tuple[int, ...]) -> bytes:
    """A resealed copy of a stream whose declared shape is replaced by ``dims`` (same rank)."""
    import struct

    from lcodec.bitstream.container import read_container

    c = read_container(data)
    off = 6 + len(c.codec) + 1 + 32 + 1 + 3 + 1
    edited = bytearray(data)
    edited[off + 1 : off + 1 + 4 * len(dims)] = struct.pack(f"<{len(dims)}I", *dims)
    return reseal(bytes(edited))


def with_one_and_two_threads(fn):
    """(fn() with 1 intra-op thread, fn() with 2), restoring the thread count."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fn()
        torch.set_num_threads(2)
        two = fn()
    finally:
        torch.set_num_threads(threads)
    return one, two

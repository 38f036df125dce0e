import struct
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lcodec.bitstream.container import (
    MAGIC,
    Container,
    Geometry,
    atomic_write,
    read_container,
    write_container,
)
from lcodec.errors import BitstreamError, InputError
from tests.conftest import reseal


def sample() -> Container:
    return Container(
        codec="walloc-rgb",
        quality=3,
        weights_hash=bytes(range(32)),
        coder_id=1,
        coder_version=(0, 5, 0),
        modality="image",
        geometry=Geometry(shape=(1, 3, 321, 481), bit_depth=8),
        sections=(b"\x01\x02\x03\x04" * 5, b""),
    )


def test_round_trip_and_layout():
    c = sample()
    data = write_container(c)
    assert data[:4] == MAGIC and data[4] == 1
    assert data[6 : 6 + data[5]] == b"walloc-rgb"  # name is length-prefixed UTF-8
    assert read_container(data) == c
    assert c.header_bytes == len(data) - 20


def test_clear_errors_for_common_mistakes():
    data = write_container(sample())
    with pytest.raises(BitstreamError, match="not an lcodec stream"):
        read_container(b"\x89PNG\r\n\x1a\n" + data[8:])
    with pytest.raises(BitstreamError, match="not an lcodec stream"):
        read_container(b"")
    with pytest.raises(BitstreamError, match="version"):
        read_container(data[:4] + b"\x09" + data[5:])
    with pytest.raises(BitstreamError, match="CRC32"):
        read_container(data[:-7])
    with pytest.raises(BitstreamError):
        read_container("not bytes")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_byte_flips_and_truncations_only_raise_bitstream_error(data):
    original = write_container(sample())
    raw = bytearray(original)
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:cut]
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    resealed = data.draw(st.booleans()) and len(raw) >= 10
    blob = reseal(bytes(raw)) if resealed else bytes(raw)
    try:
        read_container(blob)
    except BitstreamError:
        return
    assert resealed or bytes(raw) == original  # an edited stream without a valid CRC never parses


def _header_offsets():
    c = sample()
    name = len(c.codec)
    geometry = 6 + name + 1 + 32 + 1 + 3 + 1  # after modality: ndim byte
    return geometry


@pytest.mark.parametrize(
    "dims",
    [(1, 3, 10**6, 10**6), (2**32 - 1,) * 4, (0, 3, 10, 10)],
)
def test_absurd_geometry_is_refused_quickly_without_allocating(dims):
    data = bytearray(write_container(sample()))
    off = _header_offsets()
    assert data[off] == 4
    data[off + 1 : off + 17] = struct.pack("<4I", *dims)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(BitstreamError):
        read_container(reseal(bytes(data)))
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20 and elapsed < 1.0


@pytest.mark.parametrize("field_value", [0xFF, 0x07])
def test_extreme_small_fields(field_value):
    data = bytearray(write_container(sample()))
    off = _header_offsets()
    for pos in (5, off, len(data) - 4 - 20 - 8 - 1):  # name length, rank, section count
        edited = bytearray(data)
        edited[pos] = field_value
        with pytest.raises(BitstreamError):
            read_container(reseal(bytes(edited)))


def test_section_length_beyond_data():
    data = bytearray(write_container(sample()))
    pos = len(data) - 4 - 20 - 8  # first section length
    data[pos : pos + 4] = struct.pack("<I", 2**32 - 1)
    with pytest.raises(BitstreamError, match="section"):
        read_container(reseal(bytes(data)))


def test_atomic_write_refuses_overwrite_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write(target, b"abc")
    with pytest.raises(InputError, match="exists"):
        atomic_write(target, b"xyz")
    assert target.read_bytes() == b"abc"
    atomic_write(target, b"xyz", overwrite=True)
    assert target.read_bytes() == b"xyz"

    with pytest.raises(TypeError):
        atomic_write(tmp_path / "never.bin", object())  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("extra", [b"\x00", b"\x00" * 4, b"junk after the last section"])
def test_bytes_after_the_last_section_are_refused(extra):
    """Format contract (docs/bitstream.md): the sections end where the CRC begins. A stream with
    bytes between the last section and the CRC is malformed even when its CRC is valid."""
    data = write_container(sample())
    body = data[:-4] + extra
    with pytest.raises(BitstreamError, match="section lengths"):
        read_container(reseal(body + b"\x00\x00\x00\x00"))


def test_sections_are_exactly_the_declared_lengths_in_order():
    c = Container(**{**sample().__dict__, "sections": (b"a", b"", b"bcd" * 100, b"\xff" * 7)})
    back = read_container(write_container(c))
    assert back.sections == (b"a", b"", b"bcd" * 100, b"\xff" * 7)
    data = bytearray(write_container(c))
    # one byte moved from the last section's declared length to the first's: still the same total
    lens_at = len(data) - 4 - (1 + 300 + 7) - 4 * 4
    assert struct.unpack("<4I", data[lens_at : lens_at + 16]) == (1, 0, 300, 7)
    data[lens_at : lens_at + 16] = struct.pack("<4I", 2, 0, 300, 6)
    moved = read_container(reseal(bytes(data)))
    assert moved.sections == (b"a" + b"b", b"", (b"bcd" * 100)[1:] + b"\xff", b"\xff" * 6)


def _with(**changes) -> Container:
    return Container(**{**sample().__dict__, **changes})


def test_limits_are_inclusive_exactly_where_the_format_says():
    """docs/bitstream.md limits, at and just past each bound: name 1..64 bytes, rank 1..6, each
    dimension 1..2**32-1, at most 16 sections, declared elements at most 2**31, modality id 0..2."""
    for name in ("a", "n" * 64):
        assert read_container(write_container(_with(codec=name))).codec == name
    for name in ("", "n" * 65):
        with pytest.raises(InputError, match="codec name must be 1..64 bytes"):
            write_container(_with(codec=name))
    for shape in ((7,), (1, 1, 1, 1, 1, 2), (2**31,), (2**16, 2**15)):
        assert read_container(write_container(_with(geometry=Geometry(shape)))).geometry.shape == shape
    for shape in ((), (1,) * 7, (2**32,), (0, 3)):
        with pytest.raises(InputError, match="cannot be stored"):
            write_container(_with(geometry=Geometry(shape)))
    assert write_container(_with(geometry=Geometry((2**32 - 1,))))  # storable; refused on read (too many elements)
    with pytest.raises(BitstreamError, match="above the limit"):
        read_container(write_container(_with(geometry=Geometry((2**31 + 1,)))))
    sixteen = tuple(bytes([i]) * i for i in range(16))
    assert read_container(write_container(_with(sections=sixteen))).sections == sixteen
    with pytest.raises(InputError, match="too many or too large sections"):
        write_container(_with(sections=sixteen + (b"",)))
    for modality in ("image", "audio", "video"):
        assert read_container(write_container(_with(modality=modality))).modality == modality
    with pytest.raises(InputError, match="modality must be one of"):
        write_container(_with(modality="text"))
    with pytest.raises(InputError, match="weights hash must be 32 bytes"):
        write_container(_with(weights_hash=bytes(31)))


def test_each_malformed_header_field_gets_its_own_message():
    data = bytearray(write_container(sample()))
    name_end = 6 + data[5]
    rank_at = _header_offsets()
    mod_at = rank_at - 1
    nsec_at = len(data) - 4 - 20 - 8 - 1
    cases = [
        (5, 0, "invalid codec name length 0"), (5, 65, "invalid codec name length 65"),
        (mod_at, 3, "unknown modality id 3"),
        (rank_at, 0, "invalid geometry rank 0"), (rank_at, 7, "invalid geometry rank 7"),
        (rank_at + 1, 0, r"has an empty dimension"), (nsec_at, 17, "invalid section count 17"),
    ]
    for pos, value, message in cases:
        edited = bytearray(data)
        edited[pos : pos + 4 if pos == rank_at + 1 else pos + 1] = (
            value.to_bytes(4, "little") if pos == rank_at + 1 else bytes([value]))
        with pytest.raises(BitstreamError, match=message):
            read_container(reseal(bytes(edited)))
    bad_name = bytearray(data)
    bad_name[6:name_end] = b"\xff" * (name_end - 6)
    with pytest.raises(BitstreamError, match="not valid UTF-8"):
        read_container(reseal(bytes(bad_name)))
    with pytest.raises(BitstreamError, match="expected bytes, got str"):
        read_container("LCDC")  # type: ignore[arg-type]
    for n in (4, 5):  # the magic alone, or magic and version: truncated inside the header
        with pytest.raises(BitstreamError, match="truncated inside the header"):
            read_container(bytes(data[:n]))
    with pytest.raises(BitstreamError, match="truncated inside the header"):
        read_container(bytes(data[:9]))
    with pytest.raises(BitstreamError, match=r"truncated: geometry shape runs past"):
        edited = bytearray(data[: rank_at + 1 + 4])  # the rank byte says 4 dimensions; keep one
        read_container(reseal(bytes(edited) + b"\0\0\0\0"))


def test_atomic_write_follows_the_umask_uses_the_target_folder_and_keeps_an_existing_mode(tmp_path, monkeypatch):
    """A file written by atomic_write gets what plain open() gives (0o666 under the umask), its
    temporary file sits beside the target (a rename within one file system), and replacing a
    file keeps that file's permission bits."""
    import os
    import stat

    if not hasattr(os, "fchmod"):
        pytest.skip("POSIX permission bits")
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", b"abc")
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write(tmp_path / "b.bin", b"abc")
        assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o600
        os.chmod(tmp_path / "a.bin", 0o640)
        atomic_write(tmp_path / "a.bin", b"xyz", overwrite=True)
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    moves = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (moves.append((src, dst)), real(src, dst)))
    atomic_write(tmp_path / "c.bin", b"abc")
    (src, dst), = moves
    assert os.path.dirname(src) == str(tmp_path) and os.path.basename(src).startswith(".c.bin.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin", "c.bin"]


def test_media_facts_round_trip_each_in_its_own_field():
    """bit depth, sample rate and frame rate (numerator, denominator) come back unchanged and
    unswapped (all different values, none of them the defaults)."""
    import dataclasses

    c = dataclasses.replace(sample(), modality="audio",
                            geometry=Geometry(shape=(1, 2, 48_000), bit_depth=16, sample_rate=44_100,
                                              fps_num=30_000, fps_den=1001))
    g = read_container(write_container(c)).geometry
    assert (g.shape, g.bit_depth, g.sample_rate, g.fps_num, g.fps_den) == ((1, 2, 48_000), 16, 44_100, 30_000, 1001)


def test_a_truncated_stream_names_the_field_it_ends_in():
    """A stream cut inside each field (then resealed, so the CRC is valid) is refused with a
    message naming that field, in the order of docs/bitstream.md's layout."""
    data = write_container(sample())
    body = data[:-4]
    name_end = 6 + len("walloc-rgb")
    tail_end = name_end + 1 + 32 + 1 + 3 + 1  # quality, weights hash, coder id, version, modality
    shape_end = tail_end + 1 + 4 * 4  # rank, then four 32-bit sizes
    facts_end = shape_end + 1 + 3 * 4  # bit depth, rate, fps num, fps den
    cuts = {name_end - 3: "codec name", tail_end - 10: "header", tail_end: "geometry rank",
            shape_end - 1: "geometry shape", facts_end - 2: "media facts", facts_end: "section count",
            facts_end + 1 + 5: "section lengths"}
    for cut, field in cuts.items():
        with pytest.raises(BitstreamError, match=f"truncated: {field} runs past"):
            read_container(reseal(body[:cut] + b"\x00" * 4))
    # the shortest stream with a valid CRC: magic, version, name length, no name
    with pytest.raises(BitstreamError, match="truncated: codec name runs past"):
        read_container(reseal(body[:6] + b"\x00" * 4))


def test_a_missing_output_folder_is_named(tmp_path):
    with pytest.raises(InputError, match=r"output folder .*nowhere does not exist"):
        atomic_write(tmp_path / "nowhere" / "a.bin", b"abc")

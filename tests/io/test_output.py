"""OutputFile: the destination is checked and reserved first, written whole, with the umask's mode."""
import os

import pytest

from lcodec.errors import InputError
from lcodec.io.output import PARTIAL_SUFFIX, OutputFile, partial_path


def test_reserved_before_the_work_and_renamed_when_written(tmp_path):
    target = tmp_path / "x.bin"
    out = OutputFile(target)
    assert partial_path(target).exists() and partial_path(target).name == "x.bin" + PARTIAL_SUFFIX
    out.write(b"abc")
    assert target.read_bytes() == b"abc" and not partial_path(target).exists()
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_discarded_on_error_and_stale_partial_replaced(tmp_path):
    target = tmp_path / "x.bin"
    partial_path(target).write_bytes(b"left by a killed run")
    with pytest.raises(RuntimeError), OutputFile(target):
        raise RuntimeError("the encode failed")
    assert list(tmp_path.iterdir()) == []


def test_folder_problems_are_one_clear_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="does not exist; create it first"):
        OutputFile(tmp_path / "missing" / "x.bin")
    with pytest.raises(InputError, match="is a file, not a folder"):
        OutputFile(tmp_path / "f" / "x.bin")
    with pytest.raises(InputError, match="is a folder"):
        OutputFile(tmp_path)


def test_a_second_writer_of_the_same_name_is_detected(tmp_path):
    target = tmp_path / "x.bin"
    first = OutputFile(target)
    second = OutputFile(target)  # removes the first's partial file, as it would a stale one
    second.write(b"second")
    with pytest.raises(InputError, match="another process"):
        first.write(b"first")
    assert target.read_bytes() == b"second"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

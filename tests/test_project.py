"""Project-level promises: dependency direction, lazy heavy imports, CI mirrors the README."""
import subprocess
import sys

from tests.conftest import ROOT


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_bitstream_needs_no_torch():
    mods = _modules_after("import lcodec.bitstream.container, lcodec.bitstream.coder, lcodec.bitstream.tables")
    assert "torch" not in mods


def test_import_lcodec_is_light():
    mods = _modules_after("import lcodec; lcodec.list_codecs()")
    assert not {"compressai", "torch_geometric", "matplotlib", "av"} & mods


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ('pip install -e ".[dev]"', "python -m pytest"):
        assert command in readme and command in ci

"""Fixtures shared by the eval tests."""
import pytest
import torch


@pytest.fixture()
def offline_hub(monkeypatch, tmp_path):
    """An empty torch hub folder; any download attempt fails the test."""
    def no_download(*args, **kwargs):
        raise AssertionError("attempted a download")

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return hub / "checkpoints"

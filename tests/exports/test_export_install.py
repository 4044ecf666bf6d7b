"""The sandbox's ``POST /_sandbox/exports/install`` (for benchmarks): a file served as a ready export."""

from __future__ import annotations

import gzip

import pytest
import requests
from export_support import FIXTURES

from zooflow.exports.download import download_export
from zooflow.exports.export_requests import ExportTarget, describe
from zooflow.panoptes import connect
from zooflow.sandbox.admin import SandboxAdminError
from zooflow.sandbox.populate import demo_user_config
from zooflow.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    # A sandbox of its own: replacing the demo project's export would surprise other modules.
    with SandboxProcess(tmp_path_factory.mktemp("install-sandbox"), seed="demo") as process:
        yield process


def test_an_installed_file_is_described_ready_and_downloads_intact(sandbox, tmp_path):
    data = (FIXTURES / "afc_batchagg_cls_export.csv").read_bytes()
    first = tmp_path / "first.csv.gz"
    first.write_bytes(gzip.compress(data))
    config = demo_user_config(sandbox.endpoint)
    target = ExportTarget("project", 1, "classifications")
    with connect(config):
        installed = sandbox.admin.install_export("project", 1, "classifications", first)
        media = describe(target)
        assert media.ready and media.media_id == installed["medium_id"] and installed["bytes"] == first.stat().st_size
        response = requests.get(media.src, timeout=30)
        assert response.headers["Content-Encoding"] == "gzip" and response.content == data
        result = download_export(target, tmp_path / "downloads")
        assert gzip.decompress((tmp_path / "downloads" / result.path.rsplit("/", 1)[1]).read_bytes()) == data
        # Installing again replaces the blob behind the same medium, as a regenerated export does.
        second = tmp_path / "second.csv.gz"
        second.write_bytes(gzip.compress(data + data.split(b"\n", 1)[1]))
        again = sandbox.admin.install_export("projects", 1, "classifications", second)
        assert again["medium_id"] == installed["medium_id"] and again["blob_path"] == installed["blob_path"]
        fresh = describe(target)
        assert fresh.updated_at >= media.updated_at
        assert requests.get(fresh.src, timeout=30).content.count(b"\n") == 2 * data.count(b"\n") - 1


def test_install_refuses_what_panoptes_could_not_serve(sandbox, tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"a,b\n")
    gz = tmp_path / "ok.csv.gz"
    gz.write_bytes(gzip.compress(b"a,b\n"))
    for args, message in [
        (("project", 1, "classifications", plain), "not gzip"),
        (("project", 999, "classifications", gz), "no project #999"),
        (("workflow", 1, "subjects", gz), "no subjects export"),
        (("project", 1, "classifications", tmp_path / "missing.csv.gz"), "not an absolute path to a file"),
    ]:
        with pytest.raises(SandboxAdminError, match=message):
            sandbox.admin.install_export(*args)

"""Settings files that are not settings give a short, clear ConfigurationError that Airflow does not retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.al.round import RoundConfig
from zooflow.errors import ConfigurationError
from zooflow.excerpts import excerpt, listing
from zooflow.exports.slice_spec import SliceSpec

LOADERS = {"slice spec file": SliceSpec.from_yaml, "active-learning config": RoundConfig.load}
MESSAGE_LIMIT = 600  # characters: a log line, not a copy of the file


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


BAD_FILES = {
    "a list": (lambda d: write(d / "c.yaml", b"- pool: p\n- workflow_id: 1\n"), "not a list: [{'pool': 'p'}, {'workflow_id': 1}]"),
    "a scalar": (lambda d: write(d / "c.yaml", b"just some text\n"), "a mapping of settings ('key: value' lines), not a single value: 'just some text'"),
    "a number": (lambda d: write(d / "c.yaml", b"42\n"), "not a single value: 42"),
    "a folder": (lambda d: d, "is a folder; give the path of the YAML file in it"),
    "a NUL byte": (lambda d: write(d / "c.yaml", b"workflow_ids: [1]\n\0\n"), "holds a NUL byte (at byte 18)"),
    "not UTF-8": (lambda d: write(d / "c.yaml", b"workflow_ids: [1]\n# caf\xe9\n"), "is not UTF-8 text"),
    "huge": (lambda d: write(d / "c.yaml", b"# " + b"x" * (2 << 20) + b"\n"), "larger than 1,048,576 bytes"),
    "not YAML": (lambda d: write(d / "c.yaml", b"a: [1\n" + b"b" * 10_000 + b"\n"), "is not valid YAML"),
    "missing": (lambda d: d / "missing.yaml", "does not exist"),
}


@pytest.mark.parametrize("what", LOADERS)
@pytest.mark.parametrize("case", BAD_FILES)
def test_a_file_that_is_not_settings_is_a_short_configuration_error_airflow_does_not_retry(what, case, tmp_path):
    make, expected = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(ConfigurationError) as refused:
        LOADERS[what](path)
    message = str(refused.value)
    assert message.startswith(f"{what} {path} ") and expected in message
    assert len(message) < MESSAGE_LIMIT
    with pytest.raises(AirflowFailException, match="^" + what), fail_fast_on_bad_config():
        LOADERS[what](path)


@pytest.mark.parametrize("what,settings,expected", [
    ("slice spec file", {f"key{i}": 1 for i in range(10_000)}, "unknown slice spec key(s) key0, key1, key10, key100, "
                                                                "key1000, and 9,995 more; known keys:"),
    ("active-learning config", {f"key{i}": 1 for i in range(10_000)} | {"pool": "p", "workflow_id": 1},
     "unknown active-learning setting(s) key0, key1, key10, key100, key1000, and 9,995 more; known:"),
    ("slice spec file", {"workflow_ids": "x" * 100_000}, "more characters)"),
    ("slice spec file", {"gold": "y" * 100_000}, "gold must be one of exclude, only, include, not 'yyy"),
    ("active-learning config", {"pool": "p", "workflow_id": "z" * 100_000}, "bad active-learning setting: invalid"),
    ("active-learning config", {"pool": ["p"] * 50_000, "workflow_id": 1}, "pool must be a file path, not ['p', "),
    ("slice spec file", {1: "a number as key", "since": "2025-01-01"}, "unknown slice spec key(s) 1;"),
])
def test_errors_quote_only_an_excerpt_of_the_file(what, settings, expected, tmp_path):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(settings, width=10**9))
    with pytest.raises(ConfigurationError) as refused:
        LOADERS[what](path)
    assert expected in str(refused.value)
    assert len(str(refused.value)) < MESSAGE_LIMIT


def test_excerpt_and_listing_say_what_they_left_out():
    assert excerpt("short") == "short"
    assert excerpt("a" * 100, limit=10) == "aaaaaaaaaa… (90 more characters)"
    assert listing(["a", "b"]) == "a, b"
    assert listing(range(1, 20_001), 3) == "1, 2, 3, and 19,997 more"
    assert listing(["x" * 200], quote=True) == "'" + "x" * 79 + "… (122 more characters)"
    assert listing(["l1", "l2", "l3"], 2, separator="; ") == "l1; l2; and 1 more"

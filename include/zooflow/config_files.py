"""Reading a YAML settings file (a slice spec, an active-learning config) into a mapping, or a clear error.

Whatever the file is — missing, a folder, binary, huge, not YAML, a list or a single value instead
of ``key: value`` lines — the answer is a ``ConfigurationError`` naming the file, what is wrong and
what to do, never a ``TypeError`` from the code that reads the settings next. A configuration error
will not fix itself, so the Airflow tasks fail at once on it instead of retrying
(``zooflow.airflow.errors.fail_fast_on_bad_config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zooflow.errors import ConfigurationError
from zooflow.excerpts import excerpt

MAX_BYTES = 1 << 20  # a settings file is a few hundred bytes; a megabyte is not one


def load_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The ``key: value`` settings in the YAML file ``path`` ({} when it is empty); ``what`` names
    the file in errors ("slice spec file")."""
    import yaml  # here, not at the top: the callers' modules load without YAML

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigurationError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} {path} is a folder; give the path of the YAML file in it") from None
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be read ({exc.strerror}); check its permissions") from None
    if len(raw) > MAX_BYTES:
        raise ConfigurationError(f"{what} {path} is larger than {MAX_BYTES:,} bytes, far more than any settings "
                                 "file; is it the right file?")
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ConfigurationError(f"{what} {path} holds a NUL byte (at byte {nul:,}): it is not a text file; is it "
                                 "the right file?")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{what} {path} is not UTF-8 text (byte {exc.start:,}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{what} {path} is not valid YAML: {excerpt(exc, 400)}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise ConfigurationError(
            f"{what} {path} must hold a mapping of settings ('key: value' lines), not {kind}: {excerpt(repr(data))}")
    return dict(data)

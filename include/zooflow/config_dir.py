"""Where the trigger forms' YAML files come from: one folder the deployment declares.

Anyone allowed to trigger a DAG fills in its form, so a form value must never name an arbitrary
file on the worker: ``{"spec_file": "/etc/shadow"}`` had the slice step read that file and quote
its lines in the task log. A form now names a slice spec or an active-learning config by its file
name in the config folder, and a name that leads anywhere else (a path, ``..``, a hidden file, a
file that is not YAML, a symlink out of the folder) is refused before anything is read.

The config folder is, in order:

1. ``ZOOFLOW_CONFIG_DIR``, when set;
2. the folder of the projects file, ``ZOOFLOW_PROJECTS``, when set (relative: to the DAGs folder);
3. ``config/`` in the DAGs folder: it ships wherever the DAG files do (the image, the compose
   mount, a git-sync or DAG bundle), so every worker sees the same files; whoever may write
   there may write DAGs too. (``config/`` beside the DAGs folder would be ``/opt/airflow/config``
   in the official image, Airflow's own settings folder, which a form must not read from.)

``ZOOFLOW_AL_CONFIG`` stays the active-learning default when the form leaves ``config`` empty:
the deployment sets it, not the form, so it may be any path. The command line runs with its
user's own rights, so ``zooflow`` commands also take a path to a file that exists (``shell=True``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from zooflow.errors import ConfigurationError
from zooflow.excerpts import excerpt, listing

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ConfigKind:
    """What kind of settings file: its name in messages, and the deployment's default, if any."""

    what: str
    default_env: str | None = None  # a variable holding the default file's path
    required: bool = False  # a run cannot do without one

    def default(self) -> Path | None:
        value = os.environ.get(self.default_env, "").strip() if self.default_env else ""
        return Path(value).expanduser() if value else None


SLICE_SPEC = ConfigKind("slice spec")
AL_CONFIG = ConfigKind("active-learning config", "ZOOFLOW_AL_CONFIG", required=True)


def config_dir(dags_folder: Path | None = None) -> Path | None:
    """The config folder (see the module's docstring); None when nothing names one (the CLI
    without ``ZOOFLOW_CONFIG_DIR`` or ``ZOOFLOW_PROJECTS``)."""
    if folder := os.environ.get("ZOOFLOW_CONFIG_DIR", "").strip():
        return Path(folder).expanduser()
    if projects := os.environ.get("ZOOFLOW_PROJECTS", "").strip():
        path = Path(projects).expanduser()
        return ((dags_folder / path) if dags_folder and not path.is_absolute() else path).parent
    return dags_folder / "config" if dags_folder else None


def config_names(folder: Path | None) -> list[str]:
    """The names a form may choose: the YAML files directly in ``folder`` that stay inside it."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if _acceptable(path.name) and _inside(path, folder)
                  and path.is_file())


def resolve_config(name: str | Path | None, kind: ConfigKind, *, dags_folder: Path | None = None,
                   shell: bool = False) -> Path | None:
    """The file that ``name`` (a form's or a command's value) means, checked but not yet read.

    Empty: the kind's deployment default (None if it has none). Otherwise the YAML file of that
    name in the config folder; with ``shell``, first a path to an existing file as given.
    """
    name = "" if name is None else str(name).strip()
    if not name and kind.default() is None and kind.required:
        raise ConfigurationError(f"no {kind.what} was chosen and the deployment sets no default: choose a file in the "
                                 f"form (the YAML files in {config_dir(dags_folder) or '$ZOOFLOW_CONFIG_DIR'}), "
                                 f"or set {kind.default_env} to the path of one")
    if not name:
        return kind.default()
    if shell and "\0" not in name and (path := Path(name).expanduser()).is_file():
        return path
    folder = config_dir(dags_folder)
    if folder is None:
        raise ConfigurationError(f"the {kind.what} {excerpt(repr(name))} is no file here, and no config folder is set "
                                 "to look for it in: set ZOOFLOW_CONFIG_DIR to the folder of your YAML files")
    how = (f"the {kind.what} is chosen by the name of a YAML file in the config folder {folder} (for example "
           f"'daily.yaml'); to use another file, copy it into that folder (ZOOFLOW_CONFIG_DIR sets the folder)")
    path = folder / name
    if not _acceptable(name):
        raise ConfigurationError(f"refused {excerpt(repr(name))}: {how}")
    if not _inside(path, folder):
        raise ConfigurationError(f"refused {excerpt(repr(name))}: it leads out of the config folder {folder} (a symlink); "
                                 f"{how}")
    if not path.exists():
        present = listing(config_names(folder)) or "no YAML files"
        raise ConfigurationError(f"there is no {kind.what} {excerpt(repr(name))} in the config folder {folder} "
                                 f"(it holds {present}); add the file there, or choose one it holds")
    return path


def _acceptable(name: str) -> bool:
    """A plain, visible YAML file name: no folder, no ``..``, no NUL byte."""
    return ("\0" not in name and "\\" not in name and PurePosixPath(name).name == name
            and not name.startswith(".") and name.lower().endswith(SUFFIXES))


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())

"""Runtime knobs of the sandbox: timings, volunteers, limits and faults.

They can be given at start (``--set key=value`` or the named CLI flags) and changed while running
through ``POST /_sandbox/settings``. Every change is validated as a whole before anything is kept,
then stored in the database so a restart behaves like the process it replaced.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

from zooflow.sandbox.db import Database
from zooflow.sandbox.skills import PRESETS, PROFILES


class SettingsError(ValueError):
    """A setting name or value the sandbox cannot use; the message says which and why."""


def _number(kind: type, minimum: float | None = 0.0, maximum: float | None = None) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{name} must be a number, not {value!r}")
        if kind is int and value != int(value):
            raise SettingsError(f"{name} must be a whole number, not {value!r}")
        if minimum is not None and value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, not {value!r}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name} must be at most {maximum}, not {value!r}")
        return kind(value)

    return check


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else check(name, value)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{name} must be true or false, not {value!r}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{name} must be a non-empty string, not {value!r}")
    return value


def _fail_rules(name: str, value: Any) -> list[dict]:
    """``[{"method": "POST", "path_regex": "^/api/subjects$", "status": 503, "count": 2}]``."""
    if not isinstance(value, list):
        raise SettingsError(f"{name} must be a list of rules")
    rules = []
    for rule in value:
        if not isinstance(rule, dict) or not isinstance(rule.get("path_regex"), str):
            raise SettingsError(f"each {name} rule needs a path_regex string: {rule!r}")
        unknown = set(rule) - {"method", "path_regex", "status", "count"}
        if unknown:
            raise SettingsError(f"{name} rule has unknown keys {sorted(unknown)}")
        try:
            re.compile(rule["path_regex"])
        except re.error as exc:
            raise SettingsError(f"{name} path_regex {rule['path_regex']!r} is not a regex: {exc}") from None
        method = rule.get("method")
        if method is not None and not isinstance(method, str):
            raise SettingsError(f"{name} method must be a string like 'POST'")
        rules.append({
            "method": method.upper() if method else None,
            "path_regex": rule["path_regex"],
            "status": _optional(_number(int, 100, 599))(f"{name}.status", rule.get("status")),
            "count": _number(int, 1)(f"{name}.count", rule.get("count", 1)),
        })
    return rules


def _skills(name: str, value: Any) -> dict[str, float] | None:
    """``{"careful": 0.3, "middling": 0.4, "random": 0.1, "biased": 0.2}`` or a preset name; ``None`` or
    ``{}``: every account is ``plain``. Shares are weights, kept as given and normalised when applied."""
    if value is None or value == {}:
        return None
    if isinstance(value, str):
        if value not in PRESETS:
            raise SettingsError(f"{name} preset must be one of {', '.join(PRESETS)}, not {value!r}")
        return dict(PRESETS[value])
    if not isinstance(value, dict):
        raise SettingsError(f"{name} must map profiles ({', '.join(PROFILES)}) to shares, or name a preset")
    unknown = sorted(set(value) - set(PROFILES))
    if unknown:
        raise SettingsError(f"{name} has unknown profile(s) {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(PROFILES)}")
    shares = {profile: _number(float)(f"{name}.{profile}", share) for profile, share in value.items()}
    if sum(shares.values()) <= 0:
        raise SettingsError(f"{name} shares must not all be 0")
    return shares


@dataclass(frozen=True)
class Setting:
    default: Any
    check: Callable[[str, Any], Any]
    help: str


SETTINGS: dict[str, Setting] = {
    "export_delay": Setting(3.0, _number(float), "sandbox seconds from an accepted export request to a ready file"),
    "export_interval": Setting(86400.0, _number(float),
                               "the export rate limiter's window in sandbox seconds: at most one attempt per "
                               "resource and type in it, refused ones counted, judged when the job starts"),
    "export_stuck": Setting(False, _boolean, "accepted export requests never complete either"),
    # Exports as the current server runs them (panoptes-realism.md §3): the rate limit is checked when the
    # job starts, refused attempts count, and a cleanup job marks dead jobs failed.
    "export_min_gap": Setting(43200.0, _number(float),
                              "sandbox seconds that must separate two export attempts of one resource and type"),
    "export_failure_rate": Setting(0.0, _number(float, 0, 1),
                                   "fraction of started export jobs that die; the cleanup job marks them failed"),
    # Counters written by background jobs (panoptes-realism.md §1-2), lags on the sandbox clock.
    "counter_mode": Setting("background", lambda name, value: _choice(name, value, ("background", "instant")),
                            "background: counters lag as Panoptes' workers make them; instant: computed on read"),
    "set_member_count_lag": Setting(180.0, _number(float),
                                    "sandbox seconds before a set's new members reach the workflow's subjects_count"),
    "retired_count_lag": Setting(10.0, _number(float),
                                 "sandbox seconds before a retirement reaches retired_set_member_subjects_count"),
    "completeness_lag": Setting(300.0, _number(float),
                                "sandbox seconds before a retirement reaches the project's completeness"),
    "status_delay": Setting(5.0, _number(float),
                            "most sandbox seconds before a newly linked subject gets its workflow status row"),
    "retire_delay": Setting(2.0, _number(float),
                            "sandbox seconds before an explicit retire_subjects call is applied"),
    "url_lifetime": Setting(300.0, _number(float, 1), "sandbox seconds a signed download or upload URL stays valid"),
    "token_lifetime": Setting(7200, _number(int, 1), "wall-clock seconds an OAuth access token lives (expires_in)"),
    "subject_limit": Setting(10000, _number(int), "subjects one user may upload, deleted ones included"),
    "volunteer_rate": Setting(0.0, _number(float), "simulated classifications per wall-clock second (0 = off)"),
    "volunteer_count": Setting(10, _number(int, 1), "number of logged-in volunteer accounts"),
    "anonymous_fraction": Setting(0.2, _number(float, 0, 1), "fraction of classifications made without logging in"),
    "volunteer_error_rate": Setting(0.1, _number(float, 0, 1), "probability a volunteer picks a wrong answer"),
    "volunteer_skills": Setting(None, _skills,
                                "share of the volunteer accounts per skill profile (plain, careful, middling, random, "
                                "biased), given in login order, or the preset 'mixed'; None = all plain "
                                "(volunteer_error_rate)"),
    "anonymous_skill": Setting("plain", lambda name, value: _choice(name, value, PROFILES),
                               "skill profile of the pooled not-logged-in volunteers (plain = volunteer_error_rate)"),
    "gold_standard_fraction": Setting(0.0, _number(float, 0, 1),
                                      "share of a workflow's subjects (by a hash of the id) that the project owner "
                                      "classifies first, as gold standard, with the true answer"),
    "retire_after": Setting(None, _optional(_number(int, 1)),
                            "classifications that retire a subject in every workflow (None = each workflow's rule)"),
    "truth_key": Setting("#truth", _text, "subject metadata key holding the true answer label"),
    "fault_rate": Setting(0.0, _number(float, 0, 1),
                          "fraction of /api, /oauth and /blob requests answered with fault_status"),
    "fault_status": Setting(503, _number(int, 400, 599), "status of injected faults"),
    "latency_ms": Setting(0, _number(int), "delay added to every non-admin request"),
    "drop_download_after_bytes": Setting(None, _optional(_number(int)),
                                         "close export downloads after this many body bytes"),
    "drop_download_count": Setting(None, _optional(_number(int)), "how many downloads to drop (None = all while set)"),
    "fail_next": Setting([], _fail_rules, "one-shot rules: [{method, path_regex, status, count}]"),
    "download_rate_mb_s": Setting(None, _optional(_number(float)),
                                  "pace export downloads at this many MB/s, like a real network link (None = as fast as loopback)"),
}


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line; the value is JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise SettingsError(f"expected key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


class Settings:
    def __init__(self, db: Database, overrides: dict[str, Any] | None = None):
        self._db = db
        self._lock = threading.Lock()
        self._values = {name: setting.default for name, setting in SETTINGS.items()}
        for row in db.all("SELECT key, value FROM settings"):
            if row["key"] in SETTINGS:
                self._values[row["key"]] = json.loads(row["value"])
        if overrides:
            self.update(overrides)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def snapshot(self) -> dict[str, Any]:
        return dict(self._values)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(changes) - set(SETTINGS))
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
        checked = {name: SETTINGS[name].check(name, value) for name, value in changes.items()}
        with self._lock, self._db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                [(name, json.dumps(value)) for name, value in checked.items()],
            )
            self._values = {**self._values, **checked}
            return dict(self._values)

"""Make a synthetic Panoptes classification export of a given uncompressed size, gzipped.

The rows follow the real 14-column layout (section 7.1 of the Panoptes notes and the samples in
``tests/fixtures/exports``): minimal quoting, compact JSON with doubled quotes, ``YYYY-MM-DD HH:MM:SS
UTC`` times, not-logged-in volunteers, a few gold-standard and expert rows, and cells of realistic
size: question-task rows of about 1.6 KB, survey rows of about 1 KB, point/circle drawings of
1-2 KB and freehand drawings of several KB. Random parts (sessions, ip tokens, coordinates, paths)
come from pools larger than gzip's 32 KB window, so the file compresses about as a real one does.

    python benchmarks/make_export.py --size-gb 1 --out benchmarks/out/export-1g.csv.gz

Generation is templated (a few string formats per row) and gzip runs on its own thread: about
20 s per GB. By default the file is gzipped with zlib at level 6, as Panoptes' Ruby export worker
does; ``--gzip isal`` is quicker to make but inflates about twice as fast with the standard library,
which flatters the founding loop.
"""

from __future__ import annotations

import argparse
import gzip
import json
import queue
import random
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from isal import igzip

HEADER = ("classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,created_at,"
          "gold_standard,expert,metadata,annotations,subject_data,subject_ids\n")
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:134.0) Gecko/20100101 Firefox/134.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
]
# (id, name, task kind, versions, weight). One name holds a comma (quoted cell), one a raw line break.
WORKFLOWS = [
    (21350, "Superluminous Supernovae", "question", ("15.31", "16.9", "16.10", "16.55"), 0.55),
    (21351, "Camera trap survey", "survey", ("1.1", "2.14", "3.2"), 0.2),
    (21352, "Find clusters, then mark galaxies", "circles", ("44.19", "49.26", "57.37"), 0.17),
    (28090, "Draw", "freehand", ("4.4", "8.7", "13.19"), 0.0795),
    (21353, "Legacy\nquestions", "question", ("2.1",), 0.0005),
]
QUESTION_TASKS = [
    ("T0", "**Has the lightcurve been rising for more than 20 days?**\n\nNOTE: The y-axis shows the magnitude "
           "(brightness) of the supernova. In astronomy smaller magnitudes are brighter!", ("Yes", "No")),
    ("T1", "Is the cross-hair in the image close to a faint, fuzzy galaxy?", ("Yes", "No", "Not sure")),
]
SPECIES = ["BBN", "WLDBST", "ZBR", "WRTHG", "LPH", "NL", "MPL", "VRVTMNK", "BSHBCK", "HPPPTMS", "KD", "RDBCK"]


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _pools(rng: random.Random) -> dict:
    """Pre-made random cell parts; each pool is far larger than gzip's window."""
    circles = []
    for _ in range(4000):
        marks = [{"r": round(rng.uniform(5, 120), 2), "x": round(rng.uniform(0, 725), 3), "y": round(rng.uniform(0, 500), 3),
                  "tool": t, "frame": 0, "details": [], "tool_label": ("Cluster", "Background galaxy", "Other")[t]}
                 for t in (rng.randrange(3) for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4, 6, 9))))]
        circles.append(marks)
    freehand = []
    walk = np.random.default_rng(rng.getrandbits(32))
    for _ in range(1500):
        n = int(rng.lognormvariate(5.3, 0.5))  # about 200 points, a long tail like the real sample
        px = np.round(rng.uniform(100, 900) + np.cumsum(walk.normal(0, 1.2, n)), 2).tolist()
        py = np.round(rng.uniform(100, 600) + np.cumsum(walk.normal(0, 1.2, n)), 2).tolist()
        freehand.append([{"frame": 0, "pathX": px, "pathY": py, "toolIndex": 0, "toolType": "freehandLine",
                          "tool_label": "Outline the cat"}])
    users = [f"volunteer{_hex(rng, 3)}{i}" for i in range(20000)]
    # Drawing cells are stored ready to write: JSON, CSV-quoted.
    circle_label = ("Draw circles around any clusters in the image.  Also identify background galaxies or other "
                    "notable objects.")
    return {
        "circles": [_quote(_compact([{"task": "T0", "task_label": circle_label, "value": v}])) for v in circles],
        "freehand": [_quote(_compact([{"task": "T0", "task_label": "Explain what to draw.", "value": v}])) for v in freehand],
        "users": users,
    }


def _annotations(kind: str, rng: random.Random, pools: dict) -> str:
    if kind == "question":
        value = [{"task": task, "task_label": label, "value": rng.choice(answers)} for task, label, answers in QUESTION_TASKS]
    elif kind == "survey":
        value = [{"task": "T1", "value": [
            {"choice": rng.choice(SPECIES), "answers": {"HWMN": str(rng.randint(1, 12)), "WHTBHVRSDS": rng.sample(["MVNG", "STNDNG", "RSTNG", "TNG"], rng.randint(1, 2)),
                                                         "RTHRNNGPRSNT": rng.choice("NY")}, "filters": {}}
            for _ in range(rng.choice((1, 1, 1, 2)))]}]
    else:
        return rng.choice(pools[kind])
    return _quote(_compact(value))


_METADATA = _quote(_compact({
    "source": "api", "session": "@S", "viewport": {"width": 1, "height": 2}, "started_at": "@A", "user_agent": "@U",
    "utc_offset": "@O", "finished_at": "@F", "live_project": True, "interventions": {"opt_in": False, "messageShown": False},
    "user_language": "en",
    "subject_dimensions": [{"clientWidth": 558, "clientHeight": 419, "naturalWidth": 1200, "naturalHeight": 900}],
    "subject_selection_state": {"retired": False, "selected_at": "@A", "already_seen": False, "selection_state": "normal",
                                "finished_workflow": False, "user_has_finished_workflow": False},
    "workflow_translation_id": "28176",
}).replace("%", "%%").replace("@S", "%(session)s").replace('"width":1', '"width":%(width)d')
  .replace('"height":2', '"height":%(height)d').replace("@A", "%(started)s").replace("@U", "%(agent)s")
  .replace("@O", "%(offset)s").replace("@F", "%(finished)s"))
VIEWPORTS = ((1710, 948), (1440, 789), (1920, 969), (390, 664), (1280, 601))


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _metadata(rng: random.Random, session: str, agent: str, started: datetime, finished: datetime) -> str:
    """The metadata cell, CSV-quoted (a template: json.dumps per row would dominate generation)."""
    width, height = rng.choice(VIEWPORTS)
    return _METADATA % {"session": session, "width": width, "height": height, "started": _iso_ms(started),
                        "agent": agent, "offset": rng.choice(("0", "18000", "-3600", "28800")),
                        "finished": _iso_ms(finished)}


def _subject_data(rng: random.Random, subject_id: int, workflow_id: int, when: datetime) -> str:
    retired = None
    if rng.random() < 0.1:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        retired = {"id": rng.randrange(10**8, 10**9), "workflow_id": workflow_id, "classifications_count": 10,
                   "created_at": stamp, "updated_at": stamp, "retired_at": stamp, "subject_id": subject_id,
                   "retirement_reason": "classification_count"}
    return _compact({str(subject_id): {"retired": retired, "ramean": round(rng.uniform(0, 360), 10),
                                       "ZTF_URL": f"https://lasair-ztf.lsst.ac.uk/objects/ZTF23{_hex(rng, 7)}",
                                       "decmean": round(rng.uniform(-90, 90), 12), "objectId": f"ZTF23{_hex(rng, 7)}"}})


class _Compressor:
    """Gzip on a thread of its own (zlib and ISA-L let go of the GIL), beside the row generator.

    ``zlib`` level 6 is what Panoptes' Ruby ``Zlib::GzipWriter`` writes by default, so the file
    inflates as a real export does; ``isal`` (level 2) is faster to make, and about twice as fast
    for the standard library to inflate as a real export is."""

    def __init__(self, path: Path, kind: str) -> None:
        self.handle = gzip.open(path, "wb", compresslevel=6) if kind == "zlib" else igzip.open(path, "wb", compresslevel=2)
        self.queue: queue.Queue = queue.Queue(4)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            self.handle.write(data)
        self.handle.close()

    def write(self, data: bytes) -> None:
        self.queue.put(data)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def generate(out: Path, size_bytes: int, *, seed: int = 1, days: int = 60, gzip_kind: str = "zlib",
             multi_subject_rate: float = 0.0) -> dict:
    rng = random.Random(seed)
    pools = _pools(rng)
    weights = [w[4] for w in WORKFLOWS]
    rows_estimate = max(1, size_bytes // 1700)
    step = days * 86400 / rows_estimate
    written, rows, classification_id, subject_base = len(HEADER), 0, 543000000, 96000000
    sessions: dict[str, tuple[str, str]] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(out.name + ".tmp")
    handle = _Compressor(temp, gzip_kind)
    try:
        handle.write(HEADER.encode())
        while written < size_bytes:
            chunk = []
            for _ in range(2000):
                rows += 1
                classification_id += rng.randint(1, 40)
                finished = START + timedelta(seconds=rows * step + rng.uniform(0, step))
                started = finished - timedelta(seconds=rng.lognormvariate(3.5, 1.0))
                workflow_id, name, kind, versions, _ = rng.choices(WORKFLOWS, weights)[0]
                version = versions[-1] if rng.random() < 0.7 else rng.choice(versions)
                if rng.random() < 0.4:
                    ip = _hex(rng, 20)
                    user_name, user_id = f"not-logged-in-{ip}", ""
                else:
                    index = rng.randrange(len(pools["users"]))
                    user_name, user_id, ip = pools["users"][index], str(1000 + index * 7), ""
                if user_name not in sessions or rng.random() < 0.05:
                    sessions[user_name] = (_hex(rng, 64), rng.choice(USER_AGENTS))
                    if len(sessions) > 50000:
                        sessions.clear()
                session, agent = sessions.get(user_name) or (_hex(rng, 64), USER_AGENTS[0])
                if not ip:
                    ip = _hex(rng, 20)
                gold = "true" if rng.random() < 0.005 else ""
                roll = rng.random()
                expert = "expert" if roll < 0.002 else "owner" if roll < 0.003 else ""
                subject_id = subject_base + rng.randrange(200_000)  # a pool of subjects, classified in any order
                subject_ids = str(subject_id)
                if multi_subject_rate and rng.random() < multi_subject_rate:
                    subject_ids += f";{subject_id + 1}"
                cells = [
                    str(classification_id), user_name, user_id, ip, str(workflow_id),
                    _quote(name) if ("," in name or "\n" in name) else name, version,
                    finished.strftime("%Y-%m-%d %H:%M:%S UTC"), gold, expert,
                    _metadata(rng, session, agent, started, finished),
                    _annotations(kind, rng, pools),
                    _quote(_subject_data(rng, subject_id, workflow_id, finished)),
                    subject_ids,
                ]
                chunk.append(",".join(cells))
            data = ("\n".join(chunk) + "\n").encode()
            handle.write(data)
            written += len(data)
    finally:
        handle.close()
    temp.replace(out)
    return {"path": str(out), "rows": rows, "uncompressed_bytes": written, "compressed_bytes": out.stat().st_size,
            "first": START.isoformat(), "last": (START + timedelta(seconds=rows * step)).isoformat()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, required=True, help="uncompressed size in GB (10^9 bytes)")
    parser.add_argument("--out", type=Path, required=True, help="the .csv.gz to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=60, help="created_at span (one partition per day)")
    parser.add_argument("--gzip", choices=("zlib", "isal"), default="zlib",
                        help="zlib level 6 as Panoptes writes (default), or ISA-L level 2 (faster to make)")
    parser.add_argument("--multi-subject-rate", type=float, default=0.0,
                        help="share of rows with two subject ids (the founding loop crashes on them)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    info = generate(args.out, int(args.size_gb * 1e9), seed=args.seed, days=args.days, gzip_kind=args.gzip,
                    multi_subject_rate=args.multi_subject_rate)
    info["seconds"] = round(time.monotonic() - started, 1)
    json.dump(info, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

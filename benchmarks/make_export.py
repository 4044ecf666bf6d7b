"""Make a synthetic Panoptes classification export of a given uncompressed size, gzipped.

The rows follow the real 14-column layout (section 7.1 of the Panoptes notes and the samples in
``tests/fixtures/exports``): minimal quoting, compact JSON with doubled quotes, ``YYYY-MM-DD HH:MM:SS
UTC`` times, not-logged-in volunteers, a few gold-standard and expert rows, and cells of realistic
size: question-task rows of about 1.6 KB, survey rows of about 1 KB, point/circle drawings of
1-2 KB and freehand drawings of several KB. Random parts (sessions, ip tokens, coordinates, paths)
come from pools larger than gzip's 32 KB window, so the file compresses about as a real one does.

    python benchmarks/make_export.py --size-gb 1 --out benchmarks/out/export-1g.csv.gz
    python benchmarks/make_export.py --size-gb 1 --mix drawing --out benchmarks/out/drawing-1g.csv.gz

``--mix drawing`` makes a drawing-heavy export instead of the default mix (for the flatten benchmark):
most rows are point, circle, polygon and freehand drawings with many marks each, in the old
front-end's format (``tool``, ``tool_label``, polygons as ``points``) and the new one's
(``taskType``, ``toolIndex``, ``toolType``, ``markIndex``, freehand as ``pathX``/``pathY``).
The default mix's file is the same with or without the option.

``--order shuffled`` draws each row's created_at at random over ``--days`` instead of rising with the
ids (an export rewritten in R, or concatenated by hand): dates in no order, every other cell as in
id order.

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
# --mix drawing: (id, name, task kind, versions, weight); about 16 marks and 3.6 KB per row on average.
DRAWING_WORKFLOWS = [
    (31001, "Penguin count", "points_old", ("52.76", "61.3"), 0.25),
    (31002, "Mark the craters", "points_new", ("3.12", "4.1"), 0.2),
    (21352, "Find clusters, then mark galaxies", "circles_old", ("44.19", "57.37"), 0.15),
    (31003, "Circle the nests", "circles_new", ("8.2",), 0.1),
    (28090, "Draw", "freehand_many", ("4.4", "13.19"), 0.15),
    (31004, "Outline the fields", "polygon_old", ("19.40",), 0.05),
    (21350, "Superluminous Supernovae", "question", ("16.9", "16.10", "16.55"), 0.0995),
    (21353, "Legacy\nquestions", "question", ("2.1",), 0.0005),
]
MIXES = {"default": WORKFLOWS, "drawing": DRAWING_WORKFLOWS}
ROW_BYTES = {"default": 1700, "drawing": 3600}  # about the mean row, to spread created_at over --days
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


def _drawing_pools(rng: random.Random) -> dict:
    """Cells of the drawing mix: many marks per row, old and new front-end formats (CSV-quoted JSON)."""
    def many() -> int:  # marks per row: a long tail, as in counting projects
        return min(400, int(rng.lognormvariate(3.0, 0.8)))

    def xy() -> dict:
        return {"x": round(rng.uniform(0, 1200), 3), "y": round(rng.uniform(0, 900), 3)}

    def cell(task: str, label: str, value: list, new: bool) -> str:
        annotation = {"task": task, "taskType": "drawing", "value": value} if new else {"task": task, "task_label": label, "value": value}
        return _quote(_compact([annotation]))

    points_labels, circle_labels = ("Adult", "Chick", "Egg"), ("Nest", "Empty nest")
    walk = np.random.default_rng(rng.getrandbits(32))
    pools: dict[str, list[str]] = {kind: [] for kind in ("points_old", "points_new", "circles_old", "circles_new",
                                                          "freehand_many", "polygon_old")}
    for _ in range(2500):
        tools = [rng.randrange(3) for _ in range(many())]
        pools["points_old"].append(cell("T0", "Mark every adult, chick and egg.", [
            xy() | {"tool": t, "frame": 0, "details": [], "tool_label": points_labels[t]} for t in tools], False))
        tools = [rng.randrange(2) for _ in range(many())]
        pools["points_new"].append(cell("T1", "", [
            {"details": [], "frame": rng.choice((0, 0, 1)), "markIndex": i, "toolIndex": t, "toolType": "point"} | xy()
            for i, t in enumerate(tools)], True))
        tools = [rng.randrange(3) for _ in range(many() // 2)]
        pools["circles_old"].append(cell("T0", "Draw circles around any clusters in the image.", [
            xy() | {"r": round(rng.uniform(5, 120), 2), "tool": t, "angle": round(rng.uniform(-180, 180), 3), "frame": 0,
                    "details": [], "tool_label": ("Cluster", "Background galaxy", "Other")[t]} for t in tools], False))
        tools = [rng.randrange(2) for _ in range(many() // 2)]
        pools["circles_new"].append(cell("T0", "", [
            {"details": [{"task": "T0.0.0"}], "frame": 0, "markIndex": i, "toolIndex": t, "toolType": "circle"} | xy()
            | {"r": round(rng.uniform(5, 80), 2), "angle": 0} for i, t in enumerate(tools)], True))
        polygons = []
        for _ in range(rng.choice((1, 2, 3, 5))):
            polygons.append({"tool": 0, "frame": 0, "closed": True, "details": [], "tool_label": "Field",
                             "points": [xy() for _ in range(rng.randint(4, 12))]})
        pools["polygon_old"].append(cell("T0", "Outline every field.", polygons, False))
    for _ in range(1500):
        lines = []
        for index in range(rng.choice((1, 2, 3, 4, 6))):
            n = int(rng.lognormvariate(4.3, 0.5))  # about 75 points a line
            px = np.round(rng.uniform(100, 900) + np.cumsum(walk.normal(0, 1.2, n)), 2).tolist()
            py = np.round(rng.uniform(100, 600) + np.cumsum(walk.normal(0, 1.2, n)), 2).tolist()
            lines.append({"frame": 0, "pathX": px, "pathY": py, "details": [], "markIndex": index, "toolIndex": 0,
                          "toolType": "freehandLine"})
        pools["freehand_many"].append(cell("T0", "", lines, True))
    return pools


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
             multi_subject_rate: float = 0.0, mix: str = "default", order: str = "id") -> dict:
    rng = random.Random(seed)
    pools = _pools(rng)
    if mix != "default":  # after the default pools, so the default mix's file does not change
        pools |= _drawing_pools(rng)
    workflows = MIXES[mix]
    weights = [w[4] for w in workflows]
    rows_estimate = max(1, size_bytes // ROW_BYTES[mix])
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
                # --order shuffled: one draw all the same, so every other cell is what id order gives
                offset = rows * step + rng.uniform(0, step) if order == "id" else rng.uniform(0, days * 86400)
                finished = START + timedelta(seconds=offset)
                started = finished - timedelta(seconds=rng.lognormvariate(3.5, 1.0))
                workflow_id, name, kind, versions, _ = rng.choices(workflows, weights)[0]
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
    return {"path": str(out), "mix": mix, "rows": rows, "uncompressed_bytes": written, "compressed_bytes": out.stat().st_size,
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
    parser.add_argument("--mix", choices=tuple(MIXES), default="default",
                        help="task mix: default (mostly questions and surveys) or drawing (mostly many-mark drawings)")
    parser.add_argument("--order", choices=("id", "shuffled"), default="id",
                        help="created_at rising with the ids, as Panoptes writes (default), or in no order (an export "
                             "rewritten or concatenated by hand); the other cells are the same either way")
    args = parser.parse_args(argv)
    started = time.monotonic()
    info = generate(args.out, int(args.size_gb * 1e9), seed=args.seed, days=args.days, gzip_kind=args.gzip,
                    multi_subject_rate=args.multi_subject_rate, mix=args.mix, order=args.order)
    info["seconds"] = round(time.monotonic() - started, 1)
    json.dump(info, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

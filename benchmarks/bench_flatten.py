"""Flatten benchmark: the founding way of flattening against ``zooflow export flatten``, on several shapes.

Issue 18 asks that flattening a 1 GB export (drawing-heavy rows included) keeps memory flat and writes
both tables (the tidy table, one row per classification and task, and the marks table, one row per
drawn mark). This measures it against the baselines in one run, on two task mixes (make_export.py's
default mix and ``--mix drawing``) at several sizes, so a flat peak is shown across sizes and shapes,
not on one tuned file:

- ``pandas``: the notebook way the founding flattening is usually done: ``pd.read_csv`` of the whole
  export, ``json.loads`` of each classification's cells, the building blocks (answers, survey choices,
  drawing marks per tool, elapsed time and viewport from ``metadata``, not-logged-in volunteers)
  filled in to give one row per task and one per mark with its coordinates, rows gathered in lists
  and one DataFrame per table written at the end;
- ``founding loop``: the same building blocks in the skeleton ``flatten_class_frame.py`` really had
  (``csv.DictReader`` over the file, rows written as they come): flat memory, the speed reference;
- ``zooflow csv`` (and ``zooflow csv+parquet`` with ``--parquet``): the ``zooflow export flatten``
  command itself.

Every run is a fresh process (the command line as a user types it); its wall time is measured from
the parent (interpreter start and imports included), its CPU time and peak RSS are ``wait4``'s
rusage of that process. A baseline whose RSS passes ``--limit-gb`` is killed and shown as such.
After each run the tables it wrote are read back (row counts, by Arrow), and zooflow's task rows and
marks must equal the baselines' (exit status 1 if not, or if zooflow's peak grows by more than half
from the smallest size to the largest).

    .venv/bin/python benchmarks/bench_flatten.py                      # 0.1 and 1 GB, both mixes: ~17 min
    .venv/bin/python benchmarks/bench_flatten.py --parquet --repeat 2  # as in README.md: ~35 min
    .venv/bin/python benchmarks/bench_flatten.py --sizes 0.1 --mixes drawing
    .venv/bin/python benchmarks/bench_flatten.py --profile benchmarks/out/flatten-drawing-0.1g.csv.gz

Exports are made with make_export.py under ``benchmarks/out/`` (``flatten-<mix>-<size>g.csv.gz``) when
missing; the tables go to ``benchmarks/out/flatten-out/``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TABLES = OUT / "flatten-out"
ZOOFLOW = Path(sys.executable).with_name("zooflow")

# What the baselines write: zooflow's tidy columns that the building blocks fill, and the mark columns.
PARAMS = ("x", "y", "x1", "y1", "x2", "y2", "r", "rx", "ry", "width", "height", "angle", "radius", "spread",
          "rotation", "x_center", "y_center", "displayTime")
TASK_FIELDS = ["classification_id", "user_name", "user_id", "logged_in", "workflow_id", "workflow_version",
               "created_at", "subject_id", "seconds_spent", "viewport_width", "viewport_height", "retired", "task",
               "task_label", "task_type", "value", "choice", "choices_count", "choice_answers", "marks_count"]
MARK_FIELDS = ["classification_id", "user_name", "subject_id", "workflow_id", "workflow_version", "created_at", "task",
               "mark_index", "frame", "tool_index", "tool_label", "shape", *PARAMS, "points", "details"]


# -- the baselines ---------------------------------------------------------------------------------------


def _time(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def building_blocks(row):
    """One classification's task rows and mark rows (lists), as the pasted building blocks made them,
    filled in for every task type of the data: a question's answer, a multiple-choice list, survey
    choices with their sub-answers, and each drawn mark (old and new front-end) with its tool,
    shape, coordinates and points."""
    annotations = json.loads(row['annotations'])
    metadata = json.loads(row['metadata'])
    subject_data = json.loads(row['subject_data'])
    subject_id = row['subject_ids'].split(';')[0]
    subject = subject_data.get(subject_id) or {}
    try:  # elapsed time block
        elapsed = (_time(metadata['finished_at']) - _time(metadata['started_at'])).total_seconds()
    except (KeyError, ValueError):
        elapsed = None
    viewport = metadata.get('viewport') or {}
    user_name = row['user_name']
    ident = [row['classification_id'], user_name, subject_id, row['workflow_id'], row['workflow_version'],
             row['created_at']]
    common = [row['classification_id'], user_name, row['user_id'], not user_name.startswith('not-logged-in'),
              row['workflow_id'], row['workflow_version'], row['created_at'], subject_id, elapsed,
              viewport.get('width'), viewport.get('height'), bool(subject.get('retired'))]
    tasks, marks = [], []
    for task in annotations:
        value = task.get('value')
        answer = choice = choices = picks = count = None
        if isinstance(value, list) and value and isinstance(value[0], dict) and 'choice' in value[0]:
            kind = 'survey'  # survey block
            choice, choices = ';'.join(str(c['choice']) for c in value), len(value)
            picks = json.dumps([{'choice': c['choice'], 'answers': c.get('answers') or {}} for c in value])
        elif isinstance(value, list) and value and all(isinstance(v, (str, int)) for v in value):
            kind, answer = 'multiple', ';'.join(str(v) for v in value)
        elif isinstance(value, list):  # drawing block: one row per drawn object
            kind, count = ('drawing' if value else 'empty'), len(value)
            for index, drawn in enumerate(value):
                if 'points' in drawn:
                    points = [[p['x'], p['y']] for p in drawn['points']]
                elif 'pathX' in drawn:
                    points = [list(p) for p in zip(drawn['pathX'], drawn['pathY'])]
                else:
                    points = None
                shape = drawn.get('toolType') or ('polygon' if 'points' in drawn else 'circle' if 'r' in drawn
                                                  else 'point')
                params = [drawn.get(k) for k in PARAMS]
                if params[0] is None and points:
                    params[0], params[1] = points[0]
                marks.append(ident + [task['task'], index, drawn.get('frame', 0), drawn.get('tool', drawn.get('toolIndex')),
                                      drawn.get('tool_label'), shape, *params,
                                      json.dumps(points) if points is not None else None,
                                      json.dumps(drawn['details']) if drawn.get('details') is not None else None])
        else:
            kind, answer = 'single', value  # question block
        tasks.append(common + [task['task'], task.get('task_label'), kind, answer, choice, choices, picks, count])
    return tasks, marks


def pandas_flatten(source, base):
    """The whole export read by pandas, rows gathered in lists, one DataFrame per table at the end."""
    import pandas as pd

    classifications = pd.read_csv(source, dtype=str, keep_default_na=False)
    columns = list(classifications.columns)
    tasks, marks = [], []
    for values in classifications.itertuples(index=False, name=None):
        task_rows, mark_rows = building_blocks(dict(zip(columns, values)))
        tasks.extend(task_rows)
        marks.extend(mark_rows)
    pd.DataFrame(tasks, columns=TASK_FIELDS).to_csv(base + '.csv', index=False)
    pd.DataFrame(marks, columns=MARK_FIELDS).to_csv(base + '-marks.csv', index=False)
    return len(classifications), len(tasks), len(marks)


def founding_flatten(source, base):
    """flatten_class_frame.py's skeleton: csv.DictReader over the file, each row's output written as it comes."""
    csv.field_size_limit(sys.maxsize)
    read = tasks = marks = 0
    with gzip.open(source, 'rt', newline='', encoding='utf-8') as file, \
            open(base + '.csv', 'w', newline='', encoding='utf-8') as task_file, \
            open(base + '-marks.csv', 'w', newline='', encoding='utf-8') as mark_file:
        task_writer, mark_writer = csv.writer(task_file), csv.writer(mark_file)
        task_writer.writerow(TASK_FIELDS)
        mark_writer.writerow(MARK_FIELDS)
        for row in csv.DictReader(file):
            read += 1
            task_rows, mark_rows = building_blocks(row)
            task_writer.writerows(task_rows)
            mark_writer.writerows(mark_rows)
            tasks, marks = tasks + len(task_rows), marks + len(mark_rows)
    return read, tasks, marks


# -- measuring -------------------------------------------------------------------------------------------

CONTENDERS = {  # label: (kind, formats)
    "pandas (whole file)": ("pandas", "csv"),
    "founding loop": ("founding", "csv"),
    "zooflow csv": ("zooflow", "csv"),
    "zooflow csv+parquet": ("zooflow", "csv,parquet"),
}


def _child_env():
    """Children import from bytecode cached under out/ (this machine sets PYTHONDONTWRITEBYTECODE)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return env


def _rss(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)) << 10
    except (OSError, AttributeError):
        return 0


def run(label, source, base, limit):
    """One run in a fresh process: wall, cpu, peak RSS, counts, and the row counts of the tables written."""
    kind, formats = CONTENDERS[label]
    for suffix in (".csv", "-marks.csv", ".parquet", "-marks.parquet"):
        Path(base + suffix).unlink(missing_ok=True)
    if kind == "zooflow":
        command = [str(ZOOFLOW), "export", "flatten", str(source), "--out", base, "--json"]
        command += [arg for fmt in formats.split(",") for arg in ("--format", fmt)]
    else:
        command = [sys.executable, __file__, "--child", kind, str(source), base]
    log, errors = Path(base + ".log"), Path(base + ".err")
    with open(log, "w") as output, open(errors, "w") as error_output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=error_output, env=_child_env(),
                                   start_new_session=True)
        done, killed = threading.Event(), []

        def watch():  # kill a run whose memory passes the limit (the pandas baseline on large files)
            while not done.wait(0.25):
                if _rss(process.pid) > limit:
                    killed.append(True)
                    os.killpg(process.pid, signal.SIGKILL)
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        process.returncode = os.waitstatus_to_exitcode(status)
    result = {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
              "killed": bool(killed), "failed": process.returncode != 0 and not killed}
    if killed or result["failed"]:
        result["error"] = errors.read_text()[-2000:]
        return result
    text = log.read_text()
    if kind == "zooflow":
        report = json.loads(text[text.index("{"):])
        result |= {"read": report["rows_read"], "rows": report["rows_written"], "marks": report["marks_written"]}
    else:
        result |= dict(zip(("read", "rows", "marks"), json.loads(text.strip().splitlines()[-1])))
    tables = [base + s for fmt in formats.split(",") for s in (f".{fmt}", f"-marks.{fmt}")]
    counted = subprocess.run([sys.executable, __file__, "--count", *tables], check=True, capture_output=True, text=True)
    result["tables"] = dict(zip(tables, json.loads(counted.stdout)))
    return result


def count_rows(paths):
    """Rows in each table written (None if missing): Parquet metadata, or the CSV read back by Arrow.
    In a child of its own: a child's ru_maxrss starts at its parent's RSS (Linux keeps the high-water
    mark across exec), so the parent imports nothing large."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    counts = []
    for path in paths:
        if not os.path.exists(path):
            counts.append(None)
        elif path.endswith(".parquet"):
            counts.append(pq.ParquetFile(path).metadata.num_rows)
        else:
            reader = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(newlines_in_values=True),
                                   read_options=pcsv.ReadOptions(block_size=64 << 20),
                                   convert_options=pcsv.ConvertOptions(include_columns=["classification_id"]))
            counts.append(sum(batch.num_rows for batch in reader))
    return counts


def export_for(mix, size):
    path = OUT / f"flatten-{mix}-{size:g}g.csv.gz"
    if not path.exists():
        print(f"making {path.name} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "make_export.py"), "--size-gb", str(size), "--mix", mix,
                        "--out", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--count":
        print(json.dumps(count_rows(argv[1:])))
        return 0
    if argv and argv[0] == "--child":
        kind, source, base = argv[1:4]
        print(json.dumps((pandas_flatten if kind == "pandas" else founding_flatten)(source, base)))
        return 0
    parser = argparse.ArgumentParser(description="Time the founding flattening against zooflow export flatten.")
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 1.0], help="uncompressed GB (default 0.1 1)")
    parser.add_argument("--mixes", nargs="+", default=["default", "drawing"], choices=("default", "drawing"))
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds; the best time is kept")
    parser.add_argument("--baselines", nargs="*", default=["pandas", "founding"], choices=("pandas", "founding"))
    parser.add_argument("--baseline-max-gb", type=float, default=None, help="skip the baselines above this size")
    parser.add_argument("--limit-gb", type=float, default=16.0, help="kill a run whose RSS passes this")
    parser.add_argument("--parquet", action="store_true", help="also time zooflow writing CSV and Parquet")
    parser.add_argument("--profile", type=Path, help="only profile zooflow's flatten of this export (cProfile)")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    TABLES.mkdir(parents=True, exist_ok=True)
    if args.profile:
        return profile(args.profile)
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus: {os.cpu_count()}", flush=True)
    subprocess.run([sys.executable, "-c", "import zooflow.cli, zooflow.exports.flatten, pandas, pyarrow.parquet"],
                   check=True, env=_child_env())  # fill the bytecode cache
    names = {"pandas": "pandas (whole file)", "founding": "founding loop"}
    ok, peaks, lines = True, {}, []
    for mix in args.mixes:
        for size in args.sizes:
            source = export_for(mix, size)
            labels = ["zooflow csv"] + (["zooflow csv+parquet"] if args.parquet else [])
            if args.baseline_max_gb is None or size <= args.baseline_max_gb:
                labels = [names[b] for b in args.baselines] + labels
            tries = {label: [] for label in labels}
            for _ in range(args.repeat):
                for label in labels:
                    # no dot in the name: zooflow's --out replaces what follows one (see README)
                    base = str(TABLES / f"{mix}-{size * 1000:.0f}mb-{label.split(' (')[0].replace(' ', '-')}")
                    tries[label].append(run(label, source, base, args.limit_gb * 1e9))
            best = {label: min(runs, key=lambda r: (r.get("failed") or r["killed"], r["seconds"]))
                    for label, runs in tries.items()}
            for label in best:
                best[label]["peak_mb"] = max(r["peak_mb"] for r in tries[label])
            mb = _uncompressed(source) / 1e6
            first = next(iter(best.values()))
            print(f"\n{mix} mix, {size:g} GB: {source.name}, {source.stat().st_size / 1e6:.0f} MB gzip, {mb:,.0f} MB "
                  f"uncompressed, {first.get('read', 0):,} rows", flush=True)
            for label, result in best.items():
                line = _line(mix, size, label, result, best, mb, tries[label])
                print("  " + line, flush=True)
                lines.append(line)
                ok &= not result["failed"]
                if result.get("error"):
                    print("    " + result["error"].strip().replace("\n", "\n    "))
                if label.startswith("zooflow"):
                    peaks.setdefault((mix, label), []).append((size, result["peak_mb"]))
            ok &= _check(best)
    print("\n| mix | size | rows in | contender | task rows | marks | time | MB/s | cpu | peak RSS | vs pandas (time, memory) "
          "| vs founding loop (time, memory) |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    for (mix, label), sized in peaks.items():
        (small, low), (large, high) = min(sized), max(sized)
        flat = high <= 1.5 * low
        ok &= flat or small == large
        print(f"{label}, {mix} mix: peak RSS {low:,.0f} MB at {small:g} GB, {high:,.0f} MB at {large:g} GB "
              f"(x{high / low:.2f}): {'flat' if flat else 'NOT flat'}")
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


def _line(mix, size, label, result, best, mb, runs):
    if result["killed"] or result["failed"]:
        what = "killed above --limit-gb" if result["killed"] else "FAILED"
        return (f"| {mix} | {size:g} GB | | {label} | | | {what} after {result['seconds']:.0f} s | | "
                f"| >{result['peak_mb']:,.0f} MB | | |")
    ratios = []
    for base in ("pandas (whole file)", "founding loop"):
        other = best.get(base)
        if not label.startswith("zooflow") or other is None:
            ratios.append("")
        elif other["killed"] or other["failed"]:
            ratios.append("baseline did not finish")
        else:
            ratios.append(f"{other['seconds'] / result['seconds']:.2f}x, {other['peak_mb'] / result['peak_mb']:.2f}x")
    times = " (runs " + ", ".join(f"{r['seconds']:.1f}" for r in runs) + ")" if len(runs) > 1 else ""
    return (f"| {mix} | {size:g} GB | {result['read']:,} | {label} | {result['rows']:,} | {result['marks']:,} | "
            f"{result['seconds']:.1f} s{times} | {mb / result['seconds']:.1f} | {result['cpu']:.1f} s | "
            f"{result['peak_mb']:,.0f} MB | {ratios[0]} | {ratios[1]} |")


def _check(best):
    """Both tables written with the rows each run reported, and every run's task rows and marks equal."""
    ok, counts = True, {}
    for label, result in best.items():
        if result["killed"] or result["failed"]:
            continue
        for table, rows in result["tables"].items():
            expected = result["marks"] if table.endswith(("-marks.csv", "-marks.parquet")) else result["rows"]
            if rows != expected:
                ok = False
                print(f"  {label}: {Path(table).name} has {rows} rows on disk, {expected:,} reported")
        counts[label] = (result["rows"], result["marks"])
    same = len(set(counts.values())) <= 1
    print(f"  tables: all written and read back; task rows and marks "
          f"{'agree' if same else 'DIFFER: ' + str(counts)} ({', '.join(counts)})")
    return ok and same


def _uncompressed(path):
    with gzip.open(path, "rb") if path.stat().st_size * 1032 >= 2**32 else open(path, "rb") as handle:
        if isinstance(handle, gzip.GzipFile):  # ISIZE wraps at 4 GiB: count
            return sum(len(b) for b in iter(lambda: handle.read(8 << 20), b""))
        handle.seek(-4, os.SEEK_END)
        return int.from_bytes(handle.read(4), "little")


def profile(source):
    """cProfile of zooflow's flatten_export (CSV out) on one export: the top functions by own time."""
    import cProfile
    import pstats

    sys.dont_write_bytecode, sys.pycache_prefix = False, str(OUT / "pycache")  # as the timed runs import
    from zooflow.exports.flatten import flatten_export

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(flatten_export, source, TABLES / "profile", formats=("csv",))
    print(f"{source.name}: {time.perf_counter() - started:.1f} s under cProfile")
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

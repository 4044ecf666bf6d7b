"""Slice benchmark over export shapes: the founding ``csv.DictReader`` loop, zooflow's
``slice_export`` and DuckDB, each cutting the same export into the same daily partitions.

One run covers every shape: exports of the same rows spread over 1, 60, 300 and 1,000 days, with
created_at rising with the ids (as Panoptes writes them) or in no order (an export rewritten or
concatenated by hand). The exports are made once by ``make_export.py`` (``--order``) and kept
under ``out/slice-shapes/``. All three keep the same rows (workflow id, minimum workflow version,
subject id range, gold-standard and expert rows excluded, a created_at window covering the whole
export, so there is a partition per day): the founding loop writes one CSV, zooflow and DuckDB write
``created_date=YYYY-MM-DD`` partitions in CSV and Parquet (zooflow's default outputs). Each run is a
fresh child process, so its wall time and peak RSS (``ru_maxrss`` of that child, imports included)
are its own. It ends with a table of times, peak RSS and ratios, and whether the rows kept agree.

    python benchmarks/bench_slice.py [--size-gb 1.5] [--days 1,60,300,1000] [--orders id,shuffled] [--repeat 3]

The spec is chosen so that the founding loop's flaws do not change the answer on this data
(its float versions agree with version numbers for a 16.0 threshold; its inclusive upper time bound
is given as 23:59:59 of the day before zooflow's exclusive ``until``); see README.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SHAPES = OUT / "slice-shapes"
IMPORTED = 0.0  # when the slicer's modules were imported, in the child

# The slice every contender makes. Founding-style bounds are strings and floats, as in the original script.
WORKFLOW_ID = 21350
MIN_VERSION = "16.0"
SUBJECTS = (96_000_000, 96_100_000)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)  # make_export.py's first created_at
FALSY = ("", "na", "n/a", "nan", "null", "none", "false", "f", "0", "no")  # zooflow's "not gold / not expert"
TARGETS = {"id": 5.0, "shuffled": 3.0}  # founding / zooflow with the default outputs (issue 19)
PEAK_MB = 600


def window(days: int) -> tuple[str, str]:
    """since (inclusive) and until (exclusive) as ``YYYY-MM-DD HH:MM:SS``: the export's whole span."""
    since, until = START, START + timedelta(days=days + 1)
    return since.strftime("%Y-%m-%d %H:%M:%S"), until.strftime("%Y-%m-%d %H:%M:%S")


def founding_slice(source: str, target: str, days: int) -> tuple[int, int]:
    """The founding scripts' slice (download_export_and_slice.py), with the spec above filled in.

    Only the input opening differs: the founding script read a CSV that requests had already
    inflated; here the same loop reads the gzip export through the standard library.
    """
    since, until = window(days)
    latest = (datetime.strptime(until, "%Y-%m-%d %H:%M:%S") - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S UTC")

    def include_class(class_record):
        if int(class_record['workflow_id']) == WORKFLOW_ID:
            pass
        else:
            return False
        if float(class_record['workflow_version']) >= float(MIN_VERSION):
            pass
        else:
            return False
        if SUBJECTS[1] >= int(class_record['subject_ids']) >= SUBJECTS[0]:
            pass
        else:
            return False
        if not class_record['gold_standard'] and not class_record['expert']:
            pass
        else:
            return False
        if latest >= class_record['created_at'] >= since + ' UTC':
            pass
        else:
            return False
        return True

    with open(target, 'w', newline='', encoding='utf-8') as file:
        fieldnames = ['classification_id', 'user_name', 'user_id', 'user_ip', 'workflow_id', 'workflow_name',
                      'workflow_version', 'created_at', 'gold_standard', 'expert', 'metadata', 'annotations',
                      'subject_data', 'subject_ids']
        writer = csv.DictWriter(file, fieldnames=fieldnames)
        writer.writeheader()
        i = 0
        j = 0
        with gzip.open(source, 'rt', newline='', encoding='utf-8') as f:
            r = csv.DictReader(f)
            for row in r:
                i += 1
                if include_class(row):
                    j += 1
                    writer.writerow({'classification_id': row['classification_id'],
                                     'user_name': row['user_name'],
                                     'user_id': row['user_id'],
                                     'user_ip': row['user_ip'],
                                     'workflow_id': row['workflow_id'],
                                     'workflow_name': row['workflow_name'],
                                     'workflow_version': row['workflow_version'],
                                     'created_at': row['created_at'],
                                     'gold_standard': row['gold_standard'],
                                     'expert': row['expert'],
                                     'metadata': row['metadata'],
                                     'annotations': row['annotations'],
                                     'subject_data': row['subject_data'],
                                     'subject_ids': row['subject_ids']})
    return i, j


def zooflow_slice(source: str, target: str, days: int, formats: tuple[str, ...]) -> dict:
    from zooflow.exports.slice_spec import SliceSpec
    from zooflow.exports.slicing import slice_export

    global IMPORTED
    IMPORTED = time.perf_counter()
    since, until = window(days)
    spec = SliceSpec.from_mapping({
        "workflow_ids": [WORKFLOW_ID], "min_workflow_version": MIN_VERSION,
        "subject_ids": [f"{SUBJECTS[0]}-{SUBJECTS[1]}"], "since": since.replace(" ", "T") + "Z",
        "until": until.replace(" ", "T") + "Z", "gold": "exclude", "expert": "exclude", "formats": list(formats),
    })
    report = slice_export(source, target, spec, quarantine_dir=Path(target) / "_quarantine")
    return {"read": report.rows_read, "kept": report.rows_kept, "partitions": report.partitions}


def duckdb_slice(source: str, target: str, days: int, formats: tuple[str, ...]) -> dict:
    """The same slice in DuckDB: the spec's tests as SQL over the export read as text, the kept rows
    written partitioned by created_date with COPY ... PARTITION_BY, once per format (the kept rows are
    held in a temporary table, so the export is read once, as zooflow reads it)."""
    import duckdb

    global IMPORTED
    IMPORTED = time.perf_counter()
    since, until = window(days)
    with gzip.open(source, "rt", encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    columns = "{" + ", ".join(f"'{name}': 'VARCHAR'" for name in header) + "}"
    falsy = ", ".join(f"'{value}'" for value in FALSY)
    con = duckdb.connect()
    con.execute(f"SET temp_directory = '{target}.tmp'")
    con.execute(f"""
        CREATE TEMP TABLE kept AS
        SELECT *, substr(created_at, 1, 10) AS created_date
        FROM read_csv('{source}', header = true, auto_detect = false, columns = {columns}, delim = ',',
                      quote = '"', escape = '"', compression = 'gzip')
        WHERE TRY_CAST(workflow_id AS BIGINT) = {WORKFLOW_ID}
          AND (TRY_CAST(split_part(workflow_version, '.', 1) AS BIGINT) > {MIN_VERSION.split('.')[0]}
               OR (TRY_CAST(split_part(workflow_version, '.', 1) AS BIGINT) = {MIN_VERSION.split('.')[0]}
                   AND coalesce(TRY_CAST(nullif(split_part(workflow_version, '.', 2), '') AS BIGINT), 0)
                       >= {MIN_VERSION.split('.')[1]}))
          AND TRY_CAST(subject_ids AS BIGINT) BETWEEN {SUBJECTS[0]} AND {SUBJECTS[1]}
          AND lower(trim(coalesce(gold_standard, ''))) IN ({falsy})
          AND lower(trim(coalesce(expert, ''))) IN ({falsy})
          AND created_at >= '{since} UTC' AND created_at < '{until} UTC'
    """)
    Path(target).mkdir(parents=True)
    for kind in formats:
        options = "FORMAT csv, HEADER" if kind == "csv" else "FORMAT parquet, COMPRESSION zstd"
        con.execute(f"COPY kept TO '{target}/{kind}' ({options}, PARTITION_BY (created_date))")
    partitions = dict(con.execute("SELECT created_date, count(*) FROM kept GROUP BY 1").fetchall())
    con.close()
    shutil.rmtree(f"{target}.tmp", ignore_errors=True)
    return {"read": None, "kept": sum(partitions.values()), "partitions": partitions}


def _child(argv: list[str]) -> None:
    """Run one measurement in this (child) process and print its figures as JSON."""
    which, source, target, days, formats = argv[:5]
    started = time.perf_counter()
    if which == "founding":
        read, kept = founding_slice(source, target, int(days))
        result = {"read": read, "kept": kept, "partitions": None}
    elif which == "zooflow":
        result = zooflow_slice(source, target, int(days), tuple(formats.split(",")))
    else:
        result = duckdb_slice(source, target, int(days), tuple(formats.split(",")))
    finished = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": finished - started, "imports": (IMPORTED - started) if IMPORTED else 0.0,
                      "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024, **result}))


def _target(which: str, source: Path) -> Path:
    target = OUT / f"slice-{which}-{source.name.split('.')[0]}"
    return target.with_suffix(".csv") if which == "founding" else target


def measure(which: str, source: Path, days: int, formats: str) -> dict:
    target = _target(which, source)
    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", which, str(source), str(target), str(days), formats]
    done = subprocess.run(command, capture_output=True, text=True, env=_child_env())
    if done.returncode:
        raise SystemExit(f"{which} failed on {source.name}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if target.is_dir():
        files = [p for p in target.rglob("*") if p.is_file() and "_quarantine" not in p.parts]
        result["files"] = len(files)
        result["output_bytes"] = sum(p.stat().st_size for p in files)
    return result


def _child_env() -> dict[str, str]:
    """Children import from bytecode cached under out/, as on any ordinary install (this machine's
    environment sets PYTHONDONTWRITEBYTECODE, which would add about 0.2 s of compiling to every
    zooflow run and none to the founding loop, whose imports are tiny)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return env


def export_for(size_gb: float, days: int, order: str) -> Path:
    """The export of this shape, made by make_export.py the first time it is asked for."""
    path = SHAPES / f"export-{order}-{days}d-{size_gb:g}g.csv.gz"
    if not path.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from make_export import generate

        started = time.monotonic()
        info = generate(path, int(size_gb * 1e9), days=days, order=order)
        print(f"  made {path.name}: {info['rows']:,} rows in {time.monotonic() - started:.0f} s", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description="Time the founding slice loop, zooflow's slicer and DuckDB on "
                                                 "exports of several shapes.")
    parser.add_argument("--size-gb", type=float, default=1.5, help="uncompressed size of each export (default 1.5)")
    parser.add_argument("--days", default="1,60,300,1000", help="days the exports span (one partition each)")
    parser.add_argument("--orders", default="id,shuffled", help="row orders: id (dates rising), shuffled (no order)")
    parser.add_argument("--formats", default="csv,parquet", help="zooflow's and DuckDB's outputs (default: both)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the best time of each is kept")
    parser.add_argument("--skip-founding", action="store_true", help="leave the founding loop out (quick iterations)")
    parser.add_argument("--skip-duckdb", action="store_true", help="leave DuckDB out")
    parser.add_argument("--json", type=Path, default=OUT / "bench_slice.json", help="where to save every figure")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    shapes = [(int(days), order) for order in args.orders.split(",") for days in args.days.split(",")]
    sources = {shape: export_for(args.size_gb, *shape) for shape in shapes}
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus: {os.cpu_count()}", flush=True)
    subprocess.run([sys.executable, "-c", "import zooflow.exports.slicing, zooflow.exports.slice_spec, duckdb, "
                    "pyarrow.parquet, csv, gzip"], check=True, env=_child_env())  # fill the bytecode cache
    runs = [("zooflow", args.formats)]
    if not args.skip_duckdb:
        runs.append(("duckdb", args.formats))
    if not args.skip_founding:
        runs.insert(0, ("founding", "csv"))
    rows, ok = [], True
    for shape in shapes:
        source = sources[shape]
        days, order = shape
        tries: dict[str, list[dict]] = {which: [] for which, _ in runs}
        loads = []
        for _ in range(args.repeat):  # interleaved, so a burst of other load hits every contender alike
            for which, formats in runs:
                loads.append(os.getloadavg()[0])
                tries[which].append(measure(which, source, days, formats))
        best = {which: min(results, key=lambda r: r["seconds"]) for which, results in tries.items()}
        for which, result in best.items():
            result["all_seconds"] = [round(t["seconds"], 2) for t in tries[which]]
            result["peak_mb"] = max(t["peak_mb"] for t in tries[which])
        row = {"days": days, "order": order, "source": source.name, "load": [round(x, 2) for x in loads], **best}
        zooflow = best["zooflow"]
        agree = []
        if "founding" in best:
            agree.append(best["founding"]["kept"] == zooflow["kept"])
            agree.append(_same_rows(_target("founding", source), _target("zooflow", source)))
        if "duckdb" in best:
            agree.append(best["duckdb"]["partitions"] == zooflow["partitions"])
        row["rows_agree"] = all(agree)
        ok &= row["rows_agree"]
        rows.append(row)
        _print_shape(row)
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(_table(rows, args.formats))
    met = _targets(rows, len(args.formats.split(",")))
    print()
    for line in met:
        print(line)
    args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0 if ok else 1


def _print_shape(row: dict) -> None:
    print(f"\n{row['source']}: {row['days']} days, {row['order']} order (load {row['load'][0]:.2f}-{max(row['load']):.2f})")
    for which in ("founding", "zooflow", "duckdb"):
        result = row.get(which)
        if result is None:
            continue
        parts = f", {len(result['partitions'])} partitions, {result['files']} files" if result.get("partitions") else ""
        print(f"  {which:9s} {result['seconds']:7.2f} s  cpu {result['cpu']:6.2f} s  peak RSS {result['peak_mb']:5.0f} MB  "
              f"kept {result['kept']:,}{parts}  (runs: {result['all_seconds']})")
    print(f"  rows agree: {row['rows_agree']}")


def _table(rows: list[dict], formats: str) -> str:
    outputs = " + ".join(kind.upper() if kind == "csv" else kind.capitalize() for kind in formats.split(","))
    lines = [f"| days (partitions) | order | rows kept | founding loop | zooflow {outputs} | DuckDB {outputs} | "
             "founding / zooflow | DuckDB / zooflow | rows agree |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        zooflow, founding, duck = row["zooflow"], row.get("founding"), row.get("duckdb")
        parts = len(zooflow["partitions"])
        cells = [f"{row['days']:,} ({parts:,})", row["order"], f"{zooflow['kept']:,}",
                 f"{founding['seconds']:.2f} s" if founding else "-",
                 f"{zooflow['seconds']:.2f} s, {zooflow['peak_mb']:.0f} MB, {zooflow['files'] / max(parts, 1):g} files/date",
                 f"{duck['seconds']:.2f} s, {duck['peak_mb']:.0f} MB, {duck['files'] / max(parts, 1):g} files/date"
                 if duck else "-",
                 f"**{founding['seconds'] / zooflow['seconds']:.2f}x**" if founding else "-",
                 f"{duck['seconds'] / zooflow['seconds']:.2f}x" if duck else "-",
                 "yes" if row["rows_agree"] else "**NO**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _targets(rows: list[dict], formats: int) -> list[str]:
    lines = []
    for row in rows:
        zooflow, founding = row["zooflow"], row.get("founding")
        misses = []
        if founding and founding["seconds"] / zooflow["seconds"] < TARGETS[row["order"]]:
            misses.append(f"{founding['seconds'] / zooflow['seconds']:.2f}x < {TARGETS[row['order']]:g}x")
        if zooflow["peak_mb"] > PEAK_MB:
            misses.append(f"peak {zooflow['peak_mb']:.0f} MB > {PEAK_MB} MB")
        if zooflow["files"] != formats * len(zooflow["partitions"]):
            misses.append(f"{zooflow['files']} files for {len(zooflow['partitions'])} partitions")
        lines.append(f"{row['days']:>5} days {row['order']:8s}: " + ("targets met" if not misses else "MISSED: " + "; ".join(misses)))
    return lines


def _same_rows(founding: Path, zooflow: Path) -> bool:
    """The same multiset of physical lines, headers dropped: founding's DictWriter ends lines with
    CRLF, zooflow copies the export's LF lines; both quote minimally, as Panoptes does."""
    def digests(paths: list[Path]) -> Counter:
        found: Counter = Counter()
        for path in paths:
            with open(path, "rb") as handle:
                next(handle, None)
                for line in handle:
                    found[hashlib.blake2b(line.rstrip(b"\r\n"), digest_size=16).digest()] += 1
        return found

    return digests([founding]) == digests(sorted(zooflow.glob("created_date=*/part-*.csv")))


if __name__ == "__main__":
    sys.exit(main())

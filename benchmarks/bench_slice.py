"""Slice benchmark: the founding ``csv.DictReader`` loop against ``zooflow.exports.slicing.slice_export``.

Both cut the same gzip export with the same tests (workflow id, minimum workflow version, subject id
range, gold-standard and expert rows excluded, a created_at window) and write the kept rows as CSV.
Each run is a fresh child process, so its wall time and peak RSS (``ru_maxrss`` of that child,
imports included) are its own. The kept-row counts must match.

    python benchmarks/bench_slice.py benchmarks/out/export-1g.csv.gz [benchmarks/out/export-4g.csv.gz ...]

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
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
IMPORTED = 0.0  # when zooflow's modules were imported, in the child

# The slice both sides make. Founding-style bounds are strings and floats, as in the original script.
WORKFLOW_ID = 21350
MIN_VERSION = "16.0"
SUBJECTS = (96_000_000, 96_100_000)
SINCE, UNTIL = "2024-01-08 00:00:00", "2024-02-19 00:00:00"  # zooflow: since inclusive, until exclusive
FOUNDING_LATEST = "2024-02-18 23:59:59 UTC"  # the founding test is inclusive at both ends


def founding_slice(source: str, target: str) -> tuple[int, int]:
    """The founding scripts' slice (download_export_and_slice.py), with the spec above filled in.

    Only the input opening differs: the founding script read a CSV that requests had already
    inflated; here the same loop reads the gzip export through the standard library.
    """

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
        if FOUNDING_LATEST >= class_record['created_at'] >= SINCE + ' UTC':
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


def zooflow_slice(source: str, target: str, formats: tuple[str, ...]) -> tuple[int, int]:
    from zooflow.exports.slice_spec import SliceSpec
    from zooflow.exports.slicing import slice_export

    global IMPORTED
    IMPORTED = time.perf_counter()

    spec = SliceSpec.from_mapping({
        "workflow_ids": [WORKFLOW_ID], "min_workflow_version": MIN_VERSION,
        "subject_ids": [f"{SUBJECTS[0]}-{SUBJECTS[1]}"], "since": SINCE + "Z", "until": UNTIL + "Z",
        "gold": "exclude", "expert": "exclude", "formats": list(formats),
    })
    report = slice_export(source, target, spec, quarantine_dir=Path(target) / "_quarantine")
    return report.rows_read, report.rows_kept


def _child(argv: list[str]) -> None:
    """Run one measurement in this (child) process and print its figures as JSON."""
    which, source, target = argv[:3]
    started = time.perf_counter()
    if which == "founding":
        read, kept = founding_slice(source, target)
    else:
        read, kept = zooflow_slice(source, target, tuple(argv[3].split(",")))
    finished = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": finished - started, "imports": (IMPORTED - started) if IMPORTED else 0.0,
                      "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
                      "read": read, "kept": kept}))


def measure(which: str, source: Path, formats: str = "csv") -> dict:
    target = OUT / f"slice-{which}-{source.name.split('.')[0]}"
    if which == "founding":
        target = target.with_suffix(".csv")
    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", which, str(source), str(target), formats]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=_child_env())
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["output_bytes"] = (sum(p.stat().st_size for p in target.rglob("*") if p.is_file() and "_quarantine" not in p.parts)
                              if target.is_dir() else target.stat().st_size)
    return result


def _child_env() -> dict[str, str]:
    """Children import from bytecode cached under out/, as on any ordinary install (this machine's
    environment sets PYTHONDONTWRITEBYTECODE, which would add about 0.2 s of compiling to every
    zooflow run and none to the founding loop, whose imports are tiny)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description="Time the founding slice loop against zooflow's slicer.")
    parser.add_argument("exports", nargs="+", type=Path, help=".csv.gz exports (see make_export.py)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best time is kept")
    parser.add_argument("--skip-founding", action="store_true", help="only time zooflow (quick iterations)")
    parser.add_argument("--parquet", action="store_true", help="also time zooflow writing CSV and Parquet")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; cpus: {os.cpu_count()}")
    subprocess.run([sys.executable, "-c", "import zooflow.exports.slicing, zooflow.exports.slice_spec, "
                    "pyarrow.parquet, csv, gzip"], check=True, env=_child_env())  # fill the bytecode cache
    ok = True
    for source in args.exports:
        uncompressed = _uncompressed_size(source)
        print(f"\n{source.name}: {source.stat().st_size / 1e6:.0f} MB gzip, {uncompressed / 1e9:.2f} GB uncompressed")
        runs = [("zooflow csv", "zooflow", "csv")]
        if args.parquet:
            runs.append(("zooflow csv+parquet", "zooflow", "csv,parquet"))
        if not args.skip_founding:
            runs.insert(0, ("founding DictReader", "founding", "csv"))
        tries: dict[str, list[dict]] = {label: [] for label, _, _ in runs}
        for _ in range(args.repeat):  # interleaved, so a burst of other load hits every contender alike
            for label, which, formats in runs:
                tries[label].append(measure(which, source, formats))
        results = {}
        for label, runs_of_label in tries.items():
            best = min(runs_of_label, key=lambda r: r["seconds"])
            best["all_seconds"] = [round(t["seconds"], 2) for t in runs_of_label]
            results[label] = best
            imports = f" (imports {best['imports']:.2f} s)" if best["imports"] else ""
            print(f"  {label:22s} {best['seconds']:7.2f} s{imports}  {uncompressed / 1e6 / best['seconds']:6.0f} MB/s  "
                  f"cpu {best['cpu']:6.2f} s  peak RSS {max(t['peak_mb'] for t in runs_of_label):6.0f} MB  "
                  f"rows read {best['read']:,}  kept {best['kept']:,}  (runs: {best['all_seconds']})")
        if "founding DictReader" in results:
            base = results["founding DictReader"]
            for label, result in results.items():
                if label == "founding DictReader":
                    continue
                same = all(t["kept"] == base["kept"] for t in tries[label])
                ok &= same
                ratios = sorted(f["seconds"] / z["seconds"] for f, z in zip(tries["founding DictReader"], tries[label]))
                print(f"  {label} is {base['seconds'] / result['seconds']:.2f}x the founding loop's speed (best against "
                      f"best; per round {', '.join(f'{r:.2f}' for r in ratios)}, median {ratios[len(ratios) // 2]:.2f}x); "
                      f"kept rows {'match' if same else 'DIFFER'} ({result['kept']:,} vs {base['kept']:,})")
            identical = _same_rows(OUT / f"slice-founding-{source.name.split('.')[0]}.csv",
                                   OUT / f"slice-zooflow-{source.name.split('.')[0]}")
            ok &= identical
            print(f"  the kept rows are {'the same lines' if identical else 'NOT the same lines'} in both outputs "
                  "(line ends aside; zooflow's in date partitions)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


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


def _uncompressed_size(path: Path) -> int:
    """The gzip trailer's ISIZE is the size modulo 4 GiB; read the stream when it could have wrapped."""
    with open(path, "rb") as handle:
        handle.seek(-4, os.SEEK_END)
        isize = int.from_bytes(handle.read(4), "little")
    if path.stat().st_size * 1032 < 2**32:  # deflate cannot expand more than 1032:1
        return isize
    from isal import igzip_threaded

    total = 0
    with igzip_threaded.open(path, "rb") as stream:
        while chunk := stream.read(8 << 20):
            total += len(chunk)
    return total


if __name__ == "__main__":
    sys.exit(main())

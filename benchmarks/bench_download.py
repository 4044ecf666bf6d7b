"""Download benchmark: the founding download, zooflow's two downloads and curl, from one sandbox.

A ``SandboxProcess`` serves a synthetic gzip export (see make_export.py) as the demo project's
classifications export, installed with the sandbox's ``POST /_sandbox/exports/install`` route, so
the bytes go through the same signed, range-capable blob route as a built export. Each measurement
runs in a fresh child process that reports its own wall time and peak RSS (for curl, the curl
process's):

* founding: ``requests.get(src, stream=True)`` + ``iter_content(4096)`` into a file, as in
  download_export_and_slice.py (requests inflates the gzip, so it writes the uncompressed CSV);
* zooflow: ``download_export(..., defer_check=True)``, as the exports DAG downloads what it slices
  (describe, stream to a ``.part`` file, check the length and the gzip header, fsync, rename, record
  ``pending.json``): the gzip's CRC and length are checked by the slice, which inflates the file anyway;
* zooflow-checked: ``download_export`` as ``zooflow export download`` and the workflows export run it,
  inflating the bytes on a second thread as they arrive to check the CRC and length;
* curl: ``curl -s -o FILE URL`` on a freshly described ``src``: the ceiling.

zooflow's times include describing the export (one API call); curl's do not.

``--end-to-end`` adds download + slice as the DAG's scheduled run does them (``download_step`` then
``slice_step`` on a local data root; the slice reads the whole export and keeps one day's rows, in CSV
and Parquet), with the check deferred to the slice (zooflow) and made during the transfer
(zooflow-checked, the slice then inflating the file a second time).

Throughput is the export's size as served (gzip bytes) over the wall time.

    python benchmarks/bench_download.py benchmarks/out/download-1g.csv.gz --repeat 3 [--rate 100] [--end-to-end]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
DOWNLOADS = ("founding", "zooflow", "zooflow-checked", "curl")
END_TO_END = ("zooflow+slice", "zooflow-checked+slice")
TARGETS = {None: 0.6, 100.0: 0.9}  # zooflow / curl, unpaced and at 100 MB/s (issue 19)
DAY = ("2024-01-01", "2024-01-02")  # what a scheduled run slices: one day (make_export.py's first)


def _client(endpoint: str):
    from zooflow.panoptes import connect
    from zooflow.sandbox.populate import demo_user_config

    return connect(demo_user_config(endpoint))


def _child(method: str, endpoint: str, project_id: int, dest: Path) -> dict:
    from zooflow.exports.export_requests import ExportTarget, describe

    target = ExportTarget("project", project_id, "classifications")
    dest.mkdir(parents=True, exist_ok=True)
    with _client(endpoint):
        if method.endswith("+slice"):
            return _download_and_slice(target, dest, defer=method == "zooflow+slice")
        if method.startswith("zooflow"):
            from zooflow.exports.download import download_export

            started = time.perf_counter()
            result = download_export(target, dest, defer_check=method == "zooflow")
            seconds = time.perf_counter() - started
            assert result.pending == (method == "zooflow")
            written = result.bytes
            peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        else:
            src = describe(target).src  # freshly signed, outside the timing
            path = dest / "export.csv"
            if method == "founding":
                import requests

                started = time.perf_counter()
                request = requests.get(src, stream=True)
                with open(path, "wb") as dstn_f:
                    for chunk in request.iter_content(chunk_size=4096):
                        dstn_f.write(chunk)
                seconds = time.perf_counter() - started
                peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            else:
                path = path.with_suffix(".csv.gz")
                started = time.perf_counter()
                done = subprocess.run(["/usr/bin/time", "-f", "%M", "curl", "-s", "-o", str(path), src], check=True,
                                      capture_output=True, text=True)
                seconds = time.perf_counter() - started
                peak_kb = int(done.stderr.strip().splitlines()[-1])  # curl's own, not the forked Python's
            written = path.stat().st_size
    return {"seconds": seconds, "peak_mb": peak_kb / 1024, "written": written}


def _download_and_slice(target, dest: Path, *, defer: bool) -> dict:
    """The DAG's download and slice tasks on a local data root: with the gzip check in the slice
    (``defer``), or made during the transfer and the file inflated again by the slice."""
    from zooflow.exports.slice_spec import SliceSpec
    from zooflow.exports.steps import download_step, slice_step
    from zooflow.paths import DataRoot
    from zooflow.storage import LocalStorage

    store = LocalStorage(DataRoot(dest))
    exports = store.root.exports_dir("bench", "classifications")
    started = time.perf_counter()
    result = download_step(store, target, exports, requested_at=None, defer_check=defer)
    downloaded = time.perf_counter()
    spec = SliceSpec.from_mapping({"since": DAY[0], "until": DAY[1]})  # a daily run's: one day, CSV and Parquet
    step = slice_step(store, "bench", "classifications", exports, spec, run_id="bench", download=result.to_dict())
    seconds = time.perf_counter() - started
    assert json.loads((exports / "latest.json").read_text())["path"] == Path(result.path).name
    return {"seconds": seconds, "download_s": downloaded - started, "slice_s": seconds - (downloaded - started),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "written": result.bytes,
            "rows": step.report.rows_kept}


def measure(method: str, endpoint: str, project_id: int) -> dict:
    dest = OUT / f"download-{method.replace('+', '-')}"
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()  # the last run's writes (the founding's 1 GB) are not left for this one's fsync to wait on
    command = [sys.executable, __file__, "--child", method, endpoint, str(project_id), str(dest)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(dest, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        print(json.dumps(_child(argv[1], argv[2], int(argv[3]), Path(argv[4]))))
        return 0
    parser = argparse.ArgumentParser(description="Time the founding download, zooflow's and curl's.")
    parser.add_argument("export", type=Path, help="a .csv.gz export (see make_export.py)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each; the best time of each is kept")
    parser.add_argument("--rate", type=float, help="pace the sandbox's downloads at this many MB/s, like a real network "
                        "link (default: loopback, as fast as the machine goes)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="also time download + slice as the DAG runs them, with the check deferred and not")
    args = parser.parse_args(argv)

    from panoptes_client import Project

    from zooflow.sandbox import seed
    from zooflow.sandbox.process import SandboxProcess

    size = args.export.stat().st_size
    data_dir = OUT / "sandbox-download"
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"load average before: {', '.join(f'{load:.2f}' for load in os.getloadavg())}; cpus: {os.cpu_count()}")
    link = f"paced at {args.rate:g} MB/s" if args.rate else "on loopback, unpaced"
    print(f"{args.export.name}: {size / 1e6:.0f} MB gzip served by a sandbox {link}")
    methods = DOWNLOADS + (END_TO_END if args.end_to_end else ())
    results: dict[str, list[dict]] = {method: [] for method in methods}
    settings = {"download_rate_mb_s": args.rate} if args.rate else None
    with SandboxProcess(data_dir, seed="demo", settings=settings) as sandbox:
        with _client(sandbox.endpoint):
            project_id = int(Project.find(slug=seed.DEMO_PROJECT_SLUG).id)
        installed = sandbox.admin.install_export("project", project_id, "classifications", args.export)
        print(f"installed as medium {installed['medium_id']} of project {project_id}")
        for _ in range(args.repeat):
            for method in methods:  # interleaved, so load changes hit all alike
                results[method].append(measure(method, sandbox.endpoint, project_id))
    best = {method: min(runs, key=lambda r: r["seconds"]) for method, runs in results.items()}
    for method in DOWNLOADS:
        result = best[method]
        note = " (writes the inflated CSV)" if method == "founding" else ""
        print(f"  {method:15s} {result['seconds']:6.2f} s  {size / 1e6 / result['seconds']:7.1f} MB/s  "
              f"peak RSS {result['peak_mb']:5.0f} MB  wrote {result['written'] / 1e6:7.1f} MB{note}  "
              f"(runs: {[round(r['seconds'], 2) for r in results[method]]})")
    ceiling = best["curl"]["seconds"]
    for method in ("founding", "zooflow", "zooflow-checked"):
        print(f"  {method} throughput is {ceiling / best[method]['seconds']:.2f}x curl's")
    target = TARGETS.get(args.rate)
    if target is not None:
        ratio = ceiling / best["zooflow"]["seconds"]
        print(f"  target: zooflow at least {target:g}x curl {link}: {'met' if ratio >= target else 'NOT met'} ({ratio:.2f}x)")
    if args.end_to_end:
        print(f"download + slice (the whole export read, the rows of {DAY[0]} kept, CSV and Parquet):")
        for method in END_TO_END:
            result = best[method]
            print(f"  {method:22s} {result['seconds']:6.2f} s (download {result['download_s']:.2f} s, slice "
                  f"{result['slice_s']:.2f} s)  peak RSS {result['peak_mb']:5.0f} MB  {result['rows']:,} rows  "
                  f"(runs: {[round(r['seconds'], 2) for r in results[method]]})")
        saved = best["zooflow-checked+slice"]["seconds"] - best["zooflow+slice"]["seconds"]
        print(f"  checking in the slice instead of during the transfer saves {saved:.2f} s end to end")
    print(f"load average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

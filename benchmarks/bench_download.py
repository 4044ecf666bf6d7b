"""Download benchmark: the founding download, zooflow's ``download_export`` and curl, from one sandbox.

A ``SandboxProcess`` serves a synthetic gzip export (see make_export.py) as the demo project's
classifications export, installed with the sandbox's ``POST /_sandbox/exports/install`` route, so
the bytes go through the same signed, range-capable blob route as a built export. Each measurement
runs in a fresh child process that reports its own wall time and peak RSS (for curl, the curl
process's):

* founding: ``requests.get(src, stream=True)`` + ``iter_content(4096)`` into a file, as in
  download_export_and_slice.py (requests inflates the gzip, so it writes the uncompressed CSV);
* zooflow: ``zooflow.exports.download.download_export`` (describe, stream to a ``.part`` file,
  fsync, verify the whole gzip, rename, record ``latest.json``);
* curl: ``curl -s -o FILE URL`` on a freshly described ``src``: the ceiling.

Throughput is the export's size as served (gzip bytes) over the wall time.

    python benchmarks/bench_download.py benchmarks/out/export-1g.csv.gz --repeat 3
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


def _client(endpoint: str):
    from zooflow.panoptes import connect
    from zooflow.sandbox.populate import demo_user_config

    return connect(demo_user_config(endpoint))


def _child(method: str, endpoint: str, project_id: int, dest: Path) -> dict:
    from zooflow.exports.export_requests import ExportTarget, describe

    target = ExportTarget("project", project_id, "classifications")
    dest.mkdir(parents=True, exist_ok=True)
    with _client(endpoint):
        if method == "zooflow":
            from zooflow.exports.download import download_export

            started = time.perf_counter()
            result = download_export(target, dest)
            seconds = time.perf_counter() - started
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


def measure(method: str, endpoint: str, project_id: int) -> dict:
    dest = OUT / f"download-{method}"
    shutil.rmtree(dest, ignore_errors=True)
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
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three; the best time of each is kept")
    parser.add_argument("--rate", type=float, help="pace the sandbox's downloads at this many MB/s, like a real network "
                        "link (default: loopback, as fast as the machine goes)")
    args = parser.parse_args(argv)

    from panoptes_client import Project

    from zooflow.sandbox import seed
    from zooflow.sandbox.process import SandboxProcess

    size = args.export.stat().st_size
    data_dir = OUT / "sandbox-download"
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; cpus: {os.cpu_count()}")
    link = f"paced at {args.rate:g} MB/s" if args.rate else "on loopback, unpaced"
    print(f"{args.export.name}: {size / 1e6:.0f} MB gzip served by a sandbox {link}")
    results: dict[str, list[dict]] = {"founding": [], "zooflow": [], "curl": []}
    settings = {"download_rate_mb_s": args.rate} if args.rate else None
    with SandboxProcess(data_dir, seed="demo", settings=settings) as sandbox:
        with _client(sandbox.endpoint):
            project_id = int(Project.find(slug=seed.DEMO_PROJECT_SLUG).id)
        installed = sandbox.admin.install_export("project", project_id, "classifications", args.export)
        print(f"installed as medium {installed['medium_id']} of project {project_id}")
        for _ in range(args.repeat):
            for method in results:  # interleaved, so load changes hit all three alike
                results[method].append(measure(method, sandbox.endpoint, project_id))
    best = {method: min(runs, key=lambda r: r["seconds"]) for method, runs in results.items()}
    for method, result in best.items():
        note = " (writes the inflated CSV)" if method == "founding" else ""
        print(f"  {method:9s} {result['seconds']:6.2f} s  {size / 1e6 / result['seconds']:7.1f} MB/s  "
              f"peak RSS {result['peak_mb']:5.0f} MB  wrote {result['written'] / 1e6:7.1f} MB{note}  "
              f"(runs: {[round(r['seconds'], 2) for r in results[method]]})")
    ceiling = best["curl"]["seconds"]
    for method in ("founding", "zooflow"):
        print(f"  {method} throughput is {ceiling / best[method]['seconds']:.2f}x curl's")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run Zooniverse's extractors (panoptes-aggregation) on a classification export; print JSON lines.

Run by the reference environment's interpreter (tests/support/reference.py), never by the project's:

    .venv-reference/bin/python reference_extract.py CLASSIFICATIONS.csv [--config CONFIG.json ...]
                                                    [--workflows WORKFLOWS.csv]
    .venv-reference/bin/python reference_extract.py --jobs JOBS.json    (several files: {name: [arguments]})

Each ``--config`` is an extractor configuration in panoptes-aggregation's own format (what
``panoptes_aggregation config`` writes and ``panoptes_aggregation extract`` reads):
``{"workflow_id": 10, "workflow_version": "16.55" or {"min": "1.1"}, "extractor_config": {name: [keywords]}}``.
``--workflows`` builds one such configuration per (workflow_id, workflow_version) of the classifications
with the reference's own machinery (``scripts.config_workflow_panoptes.config_workflow``).

Every configuration goes through the reference's ``extract_panoptes_csv.extract_csv``: its CSV reading,
workflow and version selection and ``batch_extract``. ``batch_extract`` is wrapped so that, for each
classification it is given, each extractor is also called the way it calls them (annotations grouped with
``annotation_by_task`` from ``json.loads`` of the annotations and metadata cells, a deep copy per
extractor) and the result or the exception is printed, where ``batch_extract`` itself drops failures.

Lines printed (one JSON object each, ``kind`` first; with ``--jobs``, ``job`` names the file's job):
* ``reference``: its ``version`` and ``shape_lut`` (each shape's parameter names).
* ``config``: a configuration and where it came from (``source``), with the task label table the
  reference's machinery makes from the workflows export (``labels``), or the ``error`` making it.
* ``extract``: ``classification_id``, ``workflow_id``, ``config``, ``extractor``, ``keywords``, ``index``
  (position in that extractor's keyword list), ``extract`` (without ``aggregation_version``) or ``error``,
  and ``lifted``: true for the same call on the classification with every old-style (PFE) combo annotation
  replaced by its sub-task annotations; printed only where a classification has such a combo, since the
  reference does not look inside them.
* ``command``: per configuration, the rows ``extract_csv`` wrote per extractor, or the ``error`` it raised.
* ``slugs``: ``{text: slug}`` for every string in the annotations (and survey question keys), as the
  reference's ``slugify_or_null`` makes them, so the test can compare zooflow's raw values with its keys.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import tempfile
import traceback
from pathlib import Path

import pandas
import yaml
from panoptes_aggregation import extractors
from panoptes_aggregation.extractors.question_extractor import slugify_or_null
from panoptes_aggregation.extractors.utilities import annotation_by_task
from panoptes_aggregation.scripts import extract_panoptes_csv as command
from panoptes_aggregation.scripts.config_workflow_panoptes import config_workflow
from panoptes_aggregation.shape_tools import SHAPE_LUT


JOB = None  # with --jobs: the job each line belongs to


def emit(**line) -> None:
    if JOB is not None:
        line["job"] = JOB
    print(json.dumps(line, default=str), flush=True)


def error_text(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def strip_version(extract):
    if isinstance(extract, dict):
        return {k: v for k, v in extract.items() if k != "aggregation_version"}
    if isinstance(extract, list):
        return [strip_version(e) for e in extract]
    return extract


def is_pfe_combo(annotation: dict) -> bool:
    value = annotation.get("value")
    return (isinstance(value, list) and len(value) > 0
            and all(isinstance(v, dict) and "task" in v and "value" in v for v in value))


def lift_combos(annotations: list[dict]) -> list[dict]:
    lifted = []
    for annotation in annotations:
        lifted.extend(annotation["value"] if is_pfe_combo(annotation) else [annotation])
    return lifted


def collect_strings(value, out: set) -> None:
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, list):
        for item in value:
            collect_strings(item, out)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.add(key)
            collect_strings(item, out)


def extract_one(by_task: dict, extractor_name: str, keywords: dict):
    key = "shape_extractor" if "shape_extractor" in extractor_name else extractor_name
    try:
        return strip_version(extractors.extractors[key](copy.deepcopy(by_task), **copy.deepcopy(keywords))), None
    except Exception as exc:  # the reference's own failure, reported to the test
        return None, error_text(exc)


def recording_batch_extract(label: str, real, slugs: set, written: dict):
    def batch_extract(classifications, extractor_config, *args, **kwargs):
        for _, row in classifications.iterrows():
            annotations = json.loads(row.annotations)
            metadata = json.loads(row.metadata)
            for annotation in annotations:
                collect_strings(annotation.get("value"), slugs)
            variants = [(False, annotations)]
            if any(is_pfe_combo(a) for a in annotations):
                variants.append((True, lift_combos(annotations)))
            for lifted, anns in variants:
                by_task = annotation_by_task({"annotations": anns, "metadata": metadata})
                for extractor_name, keyword_list in extractor_config.items():
                    for index, keywords in enumerate(keyword_list):
                        extract, error = extract_one(by_task, extractor_name, keywords)
                        emit(kind="extract", classification_id=str(row.classification_id),
                             workflow_id=int(row.workflow_id), config=label, extractor=extractor_name,
                             keywords=keywords, index=index, lifted=lifted, extract=extract, error=error)
        result = real(classifications, extractor_config, *args, **kwargs)
        written.update({name: int(len(frame)) for name, frame in result.items()})
        return result
    return batch_extract


def workflow_configs(classifications: Path, workflows: Path, scratch: Path) -> list[tuple[str, dict, dict]]:
    table = pandas.read_csv(classifications, encoding="utf-8", dtype={"workflow_version": str})
    found = []
    for (workflow_id, version), _ in table.groupby(["workflow_id", "workflow_version"], sort=True):
        label = f"workflows:{workflow_id}:{version}"
        try:
            with contextlib.redirect_stdout(sys.stderr):  # it prints where it saved its YAML files
                config, _, labels = config_workflow(str(workflows), int(workflow_id), version=str(version),
                                               output_dir=str(scratch))
        except Exception as exc:
            emit(kind="config", config=label, source=str(workflows), error=error_text(exc))
            continue
        found.append((label, config, labels))
    return found


def extract_file(classifications: Path, config_files: list[Path], workflows: Path | None) -> None:
    slugs: set = set()
    with tempfile.TemporaryDirectory(prefix="reference-extract-") as tmp:
        scratch = Path(tmp)
        configs = [(f"hand:{path.name}", yaml.safe_load(path.read_text(encoding="utf-8")), None) for path in config_files]
        if workflows:
            configs += workflow_configs(classifications, workflows, scratch)
        real = command.batch_extract
        for number, (label, config, labels) in enumerate(configs):
            emit(kind="config", config=label, source=label.split(":")[0], value=config, labels=labels, error=None)
            config_path = scratch / f"config-{number}.yaml"
            config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
            written: dict = {}
            command.batch_extract = recording_batch_extract(label, real, slugs, written)
            try:
                command.extract_csv(str(classifications), str(config_path), output_dir=str(scratch),
                                    output_name=f"extractions-{number}", hide_progressbar=True)
                emit(kind="command", config=label, rows=written, error=None)
            except Exception as exc:
                emit(kind="command", config=label, rows=written, error=error_text(exc))
            finally:
                command.batch_extract = real
    emit(kind="slugs", map={text: slugify_or_null(text) for text in sorted(slugs)})


def main(argv: list[str] | None = None) -> int:
    global JOB
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("classifications", type=Path, nargs="?")
    parser.add_argument("--config", type=Path, action="append", default=[])
    parser.add_argument("--workflows", type=Path)
    parser.add_argument("--jobs", type=Path, help="JSON {job name: [arguments as above]}: several files, one start-up")
    args = parser.parse_args(argv)
    if (args.classifications is None) == (args.jobs is None):
        parser.error("give either a classification export or --jobs")
    import panoptes_aggregation
    jobs = json.loads(args.jobs.read_text(encoding="utf-8")) if args.jobs else {None: argv}
    for name, job_argv in jobs.items():
        JOB = name
        job = parser.parse_args(job_argv) if name is not None else args
        emit(kind="reference", version=panoptes_aggregation.__version__, shape_lut=SHAPE_LUT)
        extract_file(job.classifications, job.config, job.workflows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

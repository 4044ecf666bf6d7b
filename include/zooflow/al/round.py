"""One round of the active-learning loop: labels in, the next batch chosen, drawn, and uploaded.

A round is two steps with the state written between them. ``select_round`` reads the volunteers'
consensus from the latest classification export, teaches the learner only those labels (and the
pool's known ones), chooses the batch, draws its images and writes the manifest. ``upload_round``
puts that manifest into a new subject set and links it to the workflow. A failure in between
resumes from the written manifest: the same items, never chosen again, never uploaded twice; a rerun
of the same Airflow run gets back the round it chose and writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib

from zooflow.al.labels import ConsensusReport, consensus_from_export, consensus_labels, export_rows
from zooflow.al.learner import DEFAULT_STRATEGY, STRATEGIES, make_estimator, metrics, select_batch
from zooflow.al.pool import load_pool
from zooflow.al.render import load_renderer
from zooflow.al.settings import CONSENSUS_METHODS
from zooflow.al.state import RoundState
from zooflow.al.weighted import weighted_labels
from zooflow.config_files import load_mapping
from zooflow.consensus.table import AUTO
from zooflow.consensus.votes import COLUMNS as VOTE_COLUMNS
from zooflow.errors import ConfigurationError
from zooflow.excerpts import excerpt, listing
from zooflow.files import atomic_write_bytes, atomic_write_json
from zooflow.subjects.upload import UploadItem, UploadReport, upload_subjects

log = logging.getLogger(__name__)

KEY = "#pool_id"  # hidden from volunteers; carries each item's id through the whole round trip
HIDDEN = ("#pool_id", "#al_round", "#query_reason", "#model_probability")
LABEL_SOURCES = ("store", "export")


@dataclass(frozen=True)
class RoundConfig:
    """A project's active-learning settings: a YAML file, with the trigger form's values on top."""

    pool: Path
    workflow_id: int
    id_column: str = "id"
    label_column: str | None = None
    renderer: str | None = None
    task: str = "T0"
    answer_map: dict[str, str] | None = None
    min_votes: int = 3
    agreement: float = 0.5
    k: int = 5
    m: int = 5
    threshold: float = 0.6
    strategy: str = DEFAULT_STRATEGY
    seed: int = 0
    estimator: str | None = None
    set_name_template: str = "al-round-{round:03d}-{date}"
    retirement_mode: str = "counts"
    labels_from: str = "store"  # "store": classifications pulled as they arrive; "export": the latest export
    refill_below: int = 0  # start the next round once fewer of the batch's subjects are unretired
    explore_fraction: float = 0.0  # random items added per batch, as a share of k + m
    approve_before_upload: bool = False  # a researcher approves each batch in Airflow before upload
    cadence: str | None = None  # the AL DAG's own schedule (cron or preset), besides export events
    consensus: str = "majority"  # "weighted": volunteer skill (Dawid-Skene) instead of a plain majority
    retire_confidence: float | str | None = None  # retire a subject once its posterior reaches this, or "auto"
    retire_dry_run: bool = True  # the retire step only reports what it would retire

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigurationError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if self.k < 0 or self.m < 0 or self.k + self.m == 0:
            raise ConfigurationError(f"a batch needs k + m > 0 items (k={self.k}, m={self.m})")
        if not 0 <= self.threshold <= 1 or not 0 < self.agreement <= 1:
            raise ConfigurationError("threshold must lie in [0, 1] and agreement in (0, 1]")
        if self.min_votes < 1:
            raise ConfigurationError("min_votes must be at least 1")
        if self.labels_from not in LABEL_SOURCES:
            raise ConfigurationError(f"labels_from must be one of {', '.join(LABEL_SOURCES)}, not {self.labels_from!r}")
        if self.refill_below < 0 or not 0 <= self.explore_fraction <= 1:
            raise ConfigurationError("refill_below counts subjects (0 or more) and explore_fraction is a share in [0, 1]")
        if self.consensus not in CONSENSUS_METHODS:
            raise ConfigurationError(f"consensus must be one of {', '.join(CONSENSUS_METHODS)}, not {self.consensus!r}")
        if self.retire_confidence not in (None, AUTO) and not (
                isinstance(self.retire_confidence, (int, float)) and 0.5 < self.retire_confidence <= 1):
            raise ConfigurationError(f"retire_confidence is a posterior probability above 0.5 and at most 1, or "
                                     f"'auto', not {self.retire_confidence!r}")
        if not isinstance(self.retire_dry_run, bool):
            raise ConfigurationError(f"retire_dry_run is true or false, not {self.retire_dry_run!r}")
        if not isinstance(self.approve_before_upload, bool):
            raise ConfigurationError(f"approve_before_upload is true or false, not {self.approve_before_upload!r}")

    @classmethod
    def load(cls, path: str | Path | None, overrides: dict[str, Any] | None = None) -> RoundConfig:
        data = load_mapping(path, "active-learning config") if path else {}
        data |= {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise ConfigurationError(f"unknown active-learning setting(s) {listing(unknown)}; known: {', '.join(sorted(known))}")
        for required in ("pool", "workflow_id"):
            if not data.get(required):
                raise ConfigurationError(f"the active-learning config needs {required!r}")
        if not isinstance(data["pool"], (str, Path)):
            raise ConfigurationError(f"the active-learning setting pool must be a file path, not {excerpt(repr(data['pool']))}")
        data["pool"] = Path(data["pool"]).expanduser()
        if path and not data["pool"].is_absolute():
            data["pool"] = Path(path).parent / data["pool"]
        try:
            return cls(**data | {"workflow_id": int(data["workflow_id"])})
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"bad active-learning setting: {excerpt(exc, 200)}") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class Selection:
    """What ``select_round`` decided, as JSON-ready values (XCom, the CLI, the report)."""

    round: int
    set_name: str
    folder: str
    manifest: str
    picks: list[dict[str, Any]]
    labelled: int
    consensus: list[str]  # summary lines; the full report is consensus.json in the round's folder
    metrics: dict[str, Any]
    resumed: bool = False
    dry_run: bool = False
    learning_curve: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _manifest_rows(picks: list[dict[str, Any]], images: dict[str, list[Path]], number: int) -> tuple[list[str], list[dict]]:
    width = max((len(files) for files in images.values()), default=0)
    header = [f"image_{i}" for i in range(width)] + list(HIDDEN)
    rows = []
    for pick in picks:
        row = {f"image_{i}": path.name for i, path in enumerate(images[pick["pool_id"]])}
        probability = pick["probability"]
        row |= {"#pool_id": pick["pool_id"], "#al_round": number, "#query_reason": pick["reason"],
                "#model_probability": "" if probability is None else round(float(probability), 4)}
        rows.append(row)
    return header, rows


def select_round(config: RoundConfig, state: RoundState, exports: list[Path], *,
                 classifications: Iterable[Mapping[str, Any]] | None = None, set_name: str | None = None,
                 dry_run: bool = False, dry_run_dir: Path | None = None, run_id: str | None = None) -> Selection:
    """Choose and draw the next batch; resume a round already chosen but not uploaded.

    Volunteer labels come from ``classifications`` (rows as an export has them: the store's, through
    ``zooflow.al.labels.store_rows``) when given, else from the classification ``exports``.

    ``set_name`` (the trigger form's) replaces the config's name template; it is fixed here, with
    the choice, so a resumed upload fills the same set. ``run_id`` (the Airflow run's) is recorded
    with the round; when that run already chose a round, its rerun gets the stored choice back
    untouched (no retraining, no redrawing, nothing written), so clearing a run changes nothing.
    """
    if not dry_run:
        if run_id and (own := state.round_of_run(run_id)):
            log.info("Round %d was chosen by this run (%s) already: returning that choice", own["round"], run_id)
            return _stored_selection(own)
        if pending := state.pending():
            log.info("Round %d was chosen earlier and not uploaded yet: resuming it", pending["round"])
            if run_id:
                state.add_run(pending["round"], run_id)
            return _stored_selection(pending)
    number = state.next_round()
    folder = dry_run_dir if dry_run else state.round_dir(number)
    if folder is None:
        raise ValueError("a dry run needs its own folder")
    pool = load_pool(config.pool, id_column=config.id_column, label_column=config.label_column)
    consensus = round_consensus(config, exports, classifications)
    volunteer = {k: v for k, v in (consensus.labels if consensus else {}).items() if k in pool}
    labelled = {**pool.known, **volunteer}
    estimator = make_estimator(config.estimator, seed=config.seed)
    batch = select_batch(pool, labelled, exclude=state.uploaded_pool_ids(), k=config.k, m=config.m,
                         threshold=config.threshold, strategy=config.strategy, seed=config.seed + number,
                         estimator=estimator, explore_fraction=config.explore_fraction)
    if not batch.picks:
        raise ConfigurationError("the pool has no unlabelled item left to choose: the loop is finished")
    scores = metrics(pool, labelled, seed=config.seed, estimator=make_estimator(config.estimator, seed=config.seed))
    render = load_renderer(config.renderer)
    images = {pick.pool_id: render(pool, pick.pool_id, folder / "images") for pick in batch.picks}
    picks = [asdict(pick) for pick in batch.picks]
    header, rows = _manifest_rows(picks, images, number)
    manifest = folder / "manifest.csv"
    _write_csv(manifest, header, rows)
    if batch.learner is not None:
        joblib.dump(batch.learner.estimator, folder / "model.joblib")
    now = datetime.now(timezone.utc)
    selection = Selection(
        round=number, set_name=set_name or config.set_name_template.format(round=number, date=now.strftime("%Y-%m-%d")),
        folder=str(folder), manifest=str(manifest), picks=picks, labelled=len(labelled),
        consensus=consensus.summary_lines() if consensus else ["no classifications yet: no volunteer labels"],
        dry_run=dry_run,
        metrics=scores | {"labelled_by_volunteers": len(volunteer), "labelled_in_pool": len(pool.known)},
        reasons=dict(Counter(p["reason"] for p in picks)),
    )
    if consensus:
        atomic_write_json(folder / "consensus.json", consensus.to_dict())
    atomic_write_json(folder / "selection.json", selection.to_dict())
    if not dry_run:
        state.record_selection(number, run_id=run_id, set_name=selection.set_name, folder=str(folder),
                               picked=[p["pool_id"] for p in picks], labelled=len(labelled), metrics=selection.metrics)
        selection.learning_curve = str(draw_learning_curve(state))
    return selection


def round_consensus(config: RoundConfig, exports: list[Path],
                    classifications: Iterable[Mapping[str, Any]] | None) -> ConsensusReport | None:
    """The round's volunteer labels by the config's method, from the store's rows or else the exports;
    None when there is neither."""
    if classifications is None and not exports:
        return None
    options = {"task": config.task, "answer_map": config.answer_map, "min_votes": config.min_votes,
               "agreement": config.agreement, "key": KEY}
    if config.consensus == "weighted":
        rows = classifications if classifications is not None else export_rows(exports, VOTE_COLUMNS)
        return weighted_labels(rows, workflow_id=config.workflow_id, retire_confidence=config.retire_confidence,
                               **options)
    if classifications is not None:
        return consensus_labels(classifications, **options)
    return consensus_from_export(exports, **options)


def _stored_selection(record: dict[str, Any]) -> Selection:
    return Selection(**json.loads((Path(record["folder"]) / "selection.json").read_text()) | {"resumed": True})


def _write_csv(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def manifest_items(manifest: Path) -> list[UploadItem]:
    """The manifest as upload items: image files beside it, hidden metadata only (volunteers see no features)."""
    with open(manifest, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    items = []
    for row in rows:
        files = tuple(manifest.parent / "images" / row[c] for c in row if c.startswith("image_") and row[c])
        metadata = {k: row[k] for k in HIDDEN}
        metadata["#al_round"] = int(metadata["#al_round"])
        metadata["#model_probability"] = float(metadata["#model_probability"]) if metadata["#model_probability"] else None
        items.append(UploadItem(key=row["#pool_id"], metadata=metadata, files=files))
    return items


def upload_round(selection: Selection, state: RoundState, project: Any, workflow: Any,
                 progress: Callable[[int, int], None] | None = None) -> UploadReport:
    """Put the chosen batch in its own subject set, link it to the workflow, and close the round.

    A round already closed (its run rerun) is checked against the set and the journal, which finds
    nothing to create or link; its record and ``uploaded.json`` stay as the first upload wrote them.
    """
    folder = Path(selection.folder)
    if not state.uploaded(selection.round):
        state.note_before_upload(selection.round, workflow.raw.get("subjects_count") or 0)
    report = upload_subjects(project, selection.set_name, manifest_items(Path(selection.manifest)), key_field=KEY,
                             journal_path=folder / "upload-journal.jsonl", workflow=workflow, on_progress=progress)
    if state.uploaded(selection.round):
        return report
    atomic_write_json(folder / "uploaded.json", report.to_dict())
    state.record_upload(selection.round, set_id=report.subject_set_id, subject_ids=report.subject_ids)
    return report


def draw_learning_curve(state: RoundState) -> Path:
    """accuracy and F1 on held-out labels against the number labelled, one point per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r for r in state.rounds if r.get("metrics") and not r.get("rejected_at")]
    labelled = [r["labelled"] for r in rounds]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in (("accuracy", "accuracy"), ("f1", "macro F1")):
        values = [r["metrics"].get(key) for r in rounds]
        points = [(x, y) for x, y in zip(labelled, values) if y is not None]
        if points:
            axes.plot(*zip(*points), marker="o", label=label)
    axes.set_xlim(0, max(labelled or [1]) * 1.1 + 1)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_xlabel("items labelled (volunteer consensus + known)")
    axes.set_ylabel("held-out score")
    axes.set_ylim(0, 1.02)
    axes.set_title(f"Active learning: {len(rounds)} round(s)")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:  # no scored round yet: nothing to name
        axes.legend(loc="upper left")
    figure.tight_layout()
    path = state.folder / "learning_curve.png"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path

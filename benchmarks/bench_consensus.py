"""Majority against skill-weighted consensus, and early retirement, on simulated crowds with a known truth.

For every skill mix of ``zooflow.consensus.crowds`` (careful, middling, random and biased volunteers in
different shares) and several seeds, ``simulate_crowd`` makes a crowd, and ``consensus`` labels its items
four ways: majority with all votes, weighted (Dawid–Skene) with all votes, and weighted with early
retirement at two confidences (by default 0.99 and ``auto``: the accuracy a majority of the full count
of votes would reach with this crowd, estimated from the fitted skills), where each item's label is the one held when it became clear
(``replay.label_used``) and its cost is the votes it took (``replay.used``). Printed per mix: accuracy
against the truth (mean over the seeds, min–max) and mean votes used per item (and as a share of all).

The skill model behind early retirement is fitted on all votes, including those an item received after
the point where it would have been retired; a deployment never has those. As a check on that look-ahead,
each early-retirement row is repeated with skills from the other items only (``--folds``-fold by item:
the model is fitted on the other folds' votes, volunteers it has not seen get the crowd's matrix). A
sweep over more confidences shows the trade-off behind the two chosen ones.

Targets, on the means over the seeds:

(a) weighted with all votes is at least as accurate as majority with all votes on every mix;
(b) on every mix, early retirement at one of the two confidences at least reaches majority's all-votes
    accuracy with at most 40 % of the votes;
(c) ``fit_skills``, and the whole ``consensus(method="weighted", retire_confidence=...)``, on 1,000,000
    classifications from 50,000 volunteers take under 30 s each (wall time, best of ``--repeat``; peak
    memory of numpy's allocations from ``tracemalloc`` in a separate run).

The exit status is 1 when a target is missed. Everything is written to ``out/bench_consensus.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from zooflow.consensus.crowds import SKILL_MIXES, answer_votes, simulate_crowd
from zooflow.consensus.sequential import replay, softmax_from
from zooflow.consensus.skills import fit_skills
from zooflow.consensus.table import AUTO, consensus, majority_accuracy
from zooflow.consensus.votes import ANONYMOUS, Votes

OUT = Path(__file__).resolve().parent / "out"
VOTE_SHARE_TARGET = 0.40
SECONDS_TARGET = 30.0
SWEEP = (0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixes", nargs="+", choices=list(SKILL_MIXES), default=list(SKILL_MIXES), help="default all")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per mix (default 3)")
    parser.add_argument("--items", type=int, default=2000, help="items per crowd (default 2000)")
    parser.add_argument("--volunteers", type=int, default=300, help="volunteers per crowd (default 300)")
    parser.add_argument("--votes", type=int, default=15, help="votes per item (default 15, Panoptes' default retirement count)")
    parser.add_argument("--classes", type=int, default=3, help="answers of the question (default 3)")
    parser.add_argument("--anonymous-share", type=float, default=0.1, help="share of votes made without logging in (default 0.1)")
    parser.add_argument("--confidences", type=confidence_arg, nargs=2, default=[0.99, AUTO],
                        help="retire confidences: probabilities or 'auto' (a full-count majority's estimated accuracy); "
                             "default 0.99 auto")
    parser.add_argument("--min-votes", type=int, default=3, help="votes before an item can be clear (default 3, the AL round's default)")
    parser.add_argument("--folds", type=int, default=5, help="folds of the look-ahead check (default 5; 0: no check)")
    parser.add_argument("--sweep", type=float, nargs="*", default=list(SWEEP), help="confidences of the sweep (none: no sweep)")
    parser.add_argument("--speed-votes", type=int, default=1_000_000, help="classifications of the speed test (default 1,000,000; 0: no speed test)")
    parser.add_argument("--speed-items", type=int, default=100_000, help="items of the speed test (default 100,000)")
    parser.add_argument("--speed-volunteers", type=int, default=50_000, help="logged-in volunteers of the speed test (default 50,000)")
    parser.add_argument("--speed-mix", choices=list(SKILL_MIXES), default="mixed", help="skill mix of the speed test (default mixed)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each speed measurement, best kept (default 3)")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    started = time.monotonic()
    print(f"Load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores.")

    methods = ["majority", "weighted"] + [f"retire {shown(c)}" for c in args.confidences]
    if args.folds:
        methods += [f"retire {shown(c)}, no look-ahead" for c in args.confidences]
    runs: dict[str, list[dict[str, Any]]] = {}
    sweep: dict[str, list[dict[str, Any]]] = {}
    for mix in args.mixes:
        runs[mix], sweep[mix] = [], []
        for seed in range(args.seeds):
            crowd = simulate_crowd(items=args.items, volunteers=args.volunteers, votes_per_item=args.votes,
                                   classes=args.classes, mix=mix, anonymous_share=args.anonymous_share, seed=seed)
            runs[mix].append(measure(crowd, args))
            sweep[mix].append({f"{shown(c)}": score(crowd, consensus(crowd.votes, method="weighted", retire_confidence=c,
                                                                  min_votes=args.min_votes).replay, used=True)
                               for c in args.sweep})
    accuracy_seconds = time.monotonic() - started

    table = {mix: {m: summarise([run[m] for run in runs[mix]]) for m in methods} for mix in args.mixes}
    print(f"\n{args.items:,} items x {args.votes} votes from {args.volunteers} volunteers ({args.anonymous_share:.0%} of "
          f"votes not logged in, pooled), {args.classes} classes; early retirement after at least {args.min_votes} votes; "
          f"mean of {args.seeds} seeds (min-max), {accuracy_seconds:.0f} s.")
    header = (f"{'mix':<15} {'method':<32} {'accuracy':>8} {'(min-max)':>15} {'votes/item':>10} {'of all':>7} "
              f"{'clear':>6} {'acc. clear':>10}")
    print(header)
    print("-" * len(header))
    for mix in args.mixes:
        for i, m in enumerate(methods):
            row = table[mix][m]
            name = {"majority": "majority, all votes", "weighted": "weighted, all votes"}.get(
                m, ("  " if "look-ahead" in m else "weighted, ") + m)
            spread = f"({row['accuracy_min']:.4f}-{row['accuracy_max']:.4f})"
            clear = (f"{row['clear_share']:>6.1%} {row['clear_accuracy'] or 0:>10.4f}" if "clear_share" in row else "")
            print(f"{mix if i == 0 else '':<15} {name:<32} {row['accuracy']:>8.4f} {spread:>15} {row['votes_used']:>10.2f} "
                  f"{row['vote_share']:>7.1%} {clear}".rstrip())

    if args.sweep:
        sweep_table = {mix: {c: summarise([s[c] for s in sweep[mix]]) for c in sweep[mix][0]} for mix in args.mixes}
        print(f"\nSweep: weighted with early retirement (min {args.min_votes} votes), accuracy / share of the votes used; "
              f"* reaches majority's all-votes accuracy with at most {VOTE_SHARE_TARGET:.0%} of the votes.")
        print(f"{'confidence':>10}  " + "  ".join(f"{mix:>22}" for mix in args.mixes))
        for c in sweep[args.mixes[0]][0]:
            cells = []
            for mix in args.mixes:
                row = sweep_table[mix][c]
                mark = "*" if meets(row, table[mix]["majority"]) else " "
                cells.append(f"{row['accuracy']:.4f} / {row['vote_share']:5.1%} {mark}")
            print((f"{c:>10}  " + "  ".join(f"{cell:>22}" for cell in cells)).rstrip())
        print(f"{'majority':>10}  " + "  ".join(f"{table[mix]['majority']['accuracy']:.4f} / 100.0%  ".rjust(22)
                                                 for mix in args.mixes))
    else:
        sweep_table = {}

    print()
    behind = [mix for mix in args.mixes if table[mix]["weighted"]["correct"] < table[mix]["majority"]["correct"]]
    target_a = not behind
    if target_a:
        print("(a) met: weighted with all votes is at least as accurate as majority on every mix ("
              + ", ".join(f"{mix} {table[mix]['weighted']['accuracy']:.4f} vs {table[mix]['majority']['accuracy']:.4f}"
                          for mix in args.mixes) + ").")
    else:
        print("(a) NOT met: weighted is less accurate than majority on " + ", ".join(
            f"{mix} ({table[mix]['weighted']['accuracy']:.4f} vs {table[mix]['majority']['accuracy']:.4f})"
            for mix in behind) + ".")
    verdicts, lines = {}, []
    for mix in args.mixes:
        majority = table[mix]["majority"]
        verdicts[mix] = ok = [c for c in args.confidences if meets(table[mix][f"retire {shown(c)}"], majority)]
        parts = []
        for c in args.confidences:
            row = table[mix][f"retire {shown(c)}"]
            accurate, cheap = row["correct"] >= majority["correct"], row["vote_share"] <= VOTE_SHARE_TARGET
            why = ("meets it" if accurate and cheap else "too many votes" if accurate else
                   "less accurate" if cheap else "less accurate, too many votes")
            parts.append(f"at {shown(c)} {row['accuracy']:.4f} with {row['vote_share']:.1%} ({why})")
        line = f"    {mix}: majority {majority['accuracy']:.4f}; " + "; ".join(parts)
        lines.append(line + (f" -> met at {' and '.join(f'{shown(c)}' for c in ok)}" if ok else " -> NOT met"))
        if args.sweep:
            reaching = [(row["vote_share"], c) for c, row in sweep_table[mix].items()
                        if row["correct"] >= majority["correct"]]
            lines.append(f"      sweep: cheapest confidence reaching majority's accuracy {min(reaching)[1]}, "
                         f"{min(reaching)[0]:.1%} of the votes" if reaching else
                         "      sweep: no confidence of the sweep reaches majority's accuracy")
    target_b = all(verdicts.values())
    missed = [mix for mix, ok in verdicts.items() if not ok]
    print(f"(b) {'met' if target_b else 'NOT met'}: early retirement reaches majority's all-votes accuracy with at most "
          f"{VOTE_SHARE_TARGET:.0%} of the votes at {' or '.join(f'{shown(c)}' for c in args.confidences)} on "
          + ("every mix:" if target_b else f"{len(args.mixes) - len(missed)} of {len(args.mixes)} mixes (missed on "
             + ", ".join(missed) + "):"))
    print("\n".join(lines))

    speed: dict[str, Any] = {}
    target_c = True
    if args.speed_votes:
        speed = measure_speed(args)
        target_c = speed["fit_seconds"] < SECONDS_TARGET and speed["consensus_seconds"] < SECONDS_TARGET
        print(f"(c) {'met' if target_c else 'NOT met'}: {speed['votes']:,} classifications of {speed['items']:,} items "
              f"from {speed['volunteers']:,} volunteers (+ the pooled not-logged-in one; {args.speed_mix} mix); "
              f"target under {SECONDS_TARGET:.0f} s, best of {args.repeat} runs:")
        print(f"    fit_skills {speed['fit_seconds']:.2f} s ({speed['iterations']} EM iterations, converged: "
              f"{speed['converged']}), peak {speed['fit_peak_mb']:.0f} MB")
        print(f"    consensus(weighted, retire_confidence={shown(args.confidences[-1])}) {speed['consensus_seconds']:.2f} s, "
              f"peak {speed['consensus_peak_mb']:.0f} MB")
        print(f"    (peaks: numpy's allocations during the call, by tracemalloc; process max RSS "
              f"{speed['max_rss_mb']:.0f} MB). Accuracy there: majority {speed['majority_accuracy']:.4f}, weighted "
              f"{speed['weighted_accuracy']:.4f}, early retirement {speed['retire_accuracy']:.4f} with "
              f"{speed['retire_vote_share']:.1%} of the votes.")
        print("    For comparison (crowd-kit is not a project dependency and is not run here): on another 1,000,000-vote, "
              "50,000-volunteer data set (class prior 0.6/0.3/0.1), measured separately on this machine, crowd-kit "
              "1.4.2's DawidSkene fitted in 9-13 s (13-18 s whole process, ~555 MB RSS) and fit_skills in ~1.3 s.")

    summary = {"settings": vars(args), "methods": methods, "table": table, "sweep": sweep_table, "speed": speed,
               "target_a": target_a, "target_b": target_b, "target_b_confidences": verdicts, "target_c": target_c,
               "runs": runs, "sweep_runs": sweep, "seconds": round(time.monotonic() - started, 1)}
    (OUT / "bench_consensus.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{time.monotonic() - started:.0f} s; written to {OUT / 'bench_consensus.json'}")
    return 0 if target_a and target_b and target_c else 1


def confidence_arg(text: str) -> float | str:
    """A retire confidence on the command line: a probability, or 'auto'."""
    return AUTO if text == AUTO else float(text)


def shown(confidence: float | str) -> str:
    return confidence if isinstance(confidence, str) else f"{confidence:g}"


def measure(crowd: Any, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """One crowd's accuracy and votes used for every method of the table."""
    votes = crowd.votes
    out = {"majority": score(crowd, consensus(votes, method="majority").replay, used=False),
           "weighted": score(crowd, consensus(votes, method="weighted").replay, used=False)}
    for c in args.confidences:
        out[f"retire {shown(c)}"] = score(crowd, consensus(votes, method="weighted", retire_confidence=c,
                                                         min_votes=args.min_votes, retire_count=args.votes).replay,
                                         used=True)
    if args.folds:
        for c, (label, used, clear) in zip(args.confidences, other_items_replay(votes, args.confidences, args.folds,
                                                                               args.min_votes, args.votes)):
            out[f"retire {shown(c)}, no look-ahead"] = tally(crowd.truth, label, used, votes.counts(), clear)
    return out


def score(crowd: Any, played: Any, *, used: bool) -> dict[str, float]:
    """Accuracy of the label after all votes, or (``used``) of the label held when clear, and votes used."""
    if not used:
        return tally(crowd.truth, played.label, played.votes, played.votes)
    return tally(crowd.truth, played.label_used, played.used, played.votes, played.clear)


def tally(truth: np.ndarray, label: np.ndarray, used: np.ndarray, votes: np.ndarray,
          clear: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy and votes used; with ``clear`` (early retirement), the share of items that became clear and
    the accuracy among those, which should be at least the confidence if the posteriors are calibrated."""
    correct = int((label == truth).sum())
    out = {"items": len(truth), "correct": correct, "accuracy": correct / len(truth),
           "votes_used": float(used.mean()), "vote_share": float(used.sum() / votes.sum())}
    if clear is not None:
        out |= {"clear": int(clear.sum()), "clear_correct": int((label == truth)[clear].sum())}
    return out


def summarise(results: list[dict[str, float]]) -> dict[str, float]:
    """Means over seeds; ``correct`` summed, so that comparisons between methods are exact."""
    accuracy = [r["accuracy"] for r in results]
    out = {"correct": sum(r["correct"] for r in results), "items": sum(r["items"] for r in results),
           "accuracy": float(np.mean(accuracy)), "accuracy_min": min(accuracy), "accuracy_max": max(accuracy),
           "votes_used": float(np.mean([r["votes_used"] for r in results])),
           "vote_share": float(np.mean([r["vote_share"] for r in results]))}
    if "clear" in results[0]:
        clear = sum(r["clear"] for r in results)
        out |= {"clear_share": clear / out["items"],
                "clear_accuracy": sum(r["clear_correct"] for r in results) / clear if clear else None}
    return out


def meets(row: dict[str, float], majority: dict[str, float]) -> bool:
    return row["correct"] >= majority["correct"] and row["vote_share"] <= VOTE_SHARE_TARGET


def other_items_replay(votes: Votes, confidences: list[float | str], folds: int, min_votes: int,
                       count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Early retirement with no look-ahead: each fold's items replayed with skills fitted on the other folds'
    votes (a volunteer the model has not seen gets the crowd's pooled matrix). Per confidence, the label held
    when clear, the votes used and whether it became clear, per item code."""
    n = len(votes.items)
    fold = np.random.default_rng(12345).permutation(n) % folds
    results = [(np.full(n, -1), votes.counts().copy(), np.zeros(n, bool)) for _ in confidences]
    for f in range(folds):
        train = fold[votes.item] != f
        model, seen = fit_skills(subset(votes, train)), np.unique(votes.worker[train])
        code = np.full(len(votes.workers), -1)
        code[seen] = np.arange(len(seen))
        test = ~train
        worker, answer = code[votes.worker[test]], votes.label[test]
        known = worker >= 0
        evidence = np.log(model.crowd[:, answer]).T
        evidence[known] = np.log(model.confusion[worker[known], :, answer[known]])
        for (label, used, clear), c in zip(results, confidences):
            threshold = majority_accuracy(model, subset(votes, train), count) if c == AUTO else c
            played = replay(votes.item[test], evidence, softmax_from(np.log(model.class_prior)), n, confidence=threshold,
                            min_votes=min_votes)
            mine = fold == f
            label[mine], used[mine], clear[mine] = played.label_used[mine], played.used[mine], played.clear[mine]
    return results


def subset(votes: Votes, keep: np.ndarray) -> Votes:
    """The votes where ``keep``, with item and worker codes renumbered (classes kept)."""
    items, item_code = np.unique(votes.item[keep], return_inverse=True)
    workers, worker_code = np.unique(votes.worker[keep], return_inverse=True)
    return Votes(item_code, worker_code, votes.label[keep], [votes.items[i] for i in items],
                 [votes.workers[w] for w in workers], votes.classes)


def speed_votes(args: argparse.Namespace) -> tuple[Votes, np.ndarray]:
    """A large crowd built directly as codes: every volunteer classifies at least once, the rest by a heavy-tailed
    activity; each item gets an equal share of votes from volunteers drawn independently (so a very active one
    may answer an item twice); answers by the profiles of ``--speed-mix`` (``crowds``' own answer model); a share
    of the votes go to the pooled not-logged-in volunteer (the last worker code)."""
    rng = np.random.default_rng(0)
    n, n_items, n_workers, k = args.speed_votes, args.speed_items, args.speed_volunteers, args.classes
    names, shares = zip(*SKILL_MIXES[args.speed_mix].items())
    profile = rng.choice(len(names), size=n_workers, p=np.array(shares) / sum(shares))
    favourite = rng.integers(0, k, n_workers)
    activity = rng.pareto(1.2, n_workers) + 0.05
    worker = np.concatenate([np.arange(n_workers), rng.choice(n_workers, n - n_workers, p=activity / activity.sum())])
    # not logged in: a share of all votes, taken from those beyond each volunteer's first
    anonymous = np.r_[np.zeros(n_workers, bool), rng.random(n - n_workers) < args.anonymous_share * n / (n - n_workers)]
    order = rng.permutation(n)
    worker, anonymous = worker[order], anonymous[order]
    item = rng.permutation(np.arange(n) % n_items)
    truth = rng.integers(0, k, n_items)
    label = answer_votes(rng, truth[item], profile[worker], favourite[worker], names, k)
    worker = np.where(anonymous, n_workers, worker)
    votes = Votes(item.astype(np.int64), worker.astype(np.int64), label.astype(np.int64),
                  [str(i) for i in range(n_items)], [str(w) for w in range(n_workers)] + [ANONYMOUS],
                  [str(c) for c in range(k)])
    return votes, truth


def measure_speed(args: argparse.Namespace) -> dict[str, Any]:
    votes, truth = speed_votes(args)
    out: dict[str, Any] = {"votes": len(votes), "items": len(votes.items), "volunteers": len(votes.workers) - 1,
                           "active_volunteers": int((np.bincount(votes.worker) > 0).sum()) - 1}
    calls = {"fit": lambda: fit_skills(votes),
             "consensus": lambda: consensus(votes, method="weighted", retire_confidence=args.confidences[-1],
                                            min_votes=args.min_votes, retire_count=args.speed_votes // args.speed_items)}
    results = {}
    for name, call in calls.items():
        times = []
        for _ in range(max(args.repeat, 1)):
            begin = time.perf_counter()
            results[name] = call()
            times.append(time.perf_counter() - begin)
        tracemalloc.start()
        call()
        out[f"{name}_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        out[f"{name}_seconds"], out[f"{name}_all_seconds"] = min(times), [round(t, 3) for t in times]
    model, played = results["fit"], results["consensus"].replay
    majority = consensus(votes, method="majority").replay
    out |= {"iterations": model.iterations, "converged": model.converged,
            "majority_accuracy": float((majority.label == truth).mean()),
            "weighted_accuracy": float((played.label == truth).mean()),
            "retire_accuracy": float((played.label_used == truth).mean()),
            "retire_vote_share": float(played.used.sum() / played.votes.sum()),
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return out


if __name__ == "__main__":
    sys.exit(main())

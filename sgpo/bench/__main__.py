"""The compute-matched benchmark: run a suite's jobs (resumable), then its report.

    python -m sgpo.bench pool                  # the selection profile of the easy/hard mixes (once)
    python -m sgpo.bench pool --candidates 196608 --confirm-classes trivial --pool-out F.json.gz
                                               # more candidates, only those solved k of k confirmed
    python -m sgpo.bench quick                 # default mix, 8 methods x 3 seeds
    python -m sgpo.bench full  [--benchmarks]  # A/A seeds, then 3 mixes x 7 methods (10 seeds default, 5 others)
    python -m sgpo.bench ablations             # sgpo's parts switched off, default and easy mixes, 3 seeds
    python -m sgpo.bench pods                  # PODS down-sampling, the default mix's 10 seeds
    python -m sgpo.bench tune                  # learning rates on val, seeds 0-1
    python -m sgpo.bench dev                   # method development: val curves, seeds 0-1
    python -m sgpo.bench dev_mixes             # the same on the easy and hard mixes
    python -m sgpo.bench full --aa-power       # how many seeds the A/A check needs (an estimate)
    python -m sgpo.bench full --reproduce default/grpo-s10   # rerun a finished job, compare with its summary

A suite is conf/bench/<name>.yaml. Each job is a train.py run (conf/experiment/bench.yaml plus the
job's method, mix, seed); its compact summary goes to benchmarks/runs/<suite>/<mix>/<method>-s<seed>.json
as soon as it finishes. A re-run skips every job whose summary holds the same resolved config, copies
those another suite has already run with the same config (``reused_from`` in the copy), reruns the
others, and rebuilds the report (benchmarks/runs/<suite>/REPORT.md, report.json, plots);
``--benchmarks`` also writes BENCHMARKS.md and BENCHMARKS.json at the repository root.
Give the machine to the benchmark alone: other jobs on the cores change every wall time (not the FLOPs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import sgpo
from sgpo.bench import analysis, markdown, plots
from sgpo.bench.pool import DEFAULT_OUT, make_pool
from sgpo.bench.runner import WORK_DIR, is_current, progress_line, resolved_config, reusable, reuse, run_job, status
from sgpo.bench.suite import RUNS_DIR, job_overrides, jobs_of, load_suite, seeds_of
from sgpo.io import atomic_write_json, atomic_write_text
from sgpo.report.stats import json_safe


def run_suite(name: str, max_jobs: int | None, dry_run: bool, runs_dir: Path, work_dir: Path) -> int:
    """Run the suite's unfinished jobs in order; returns the number that failed."""
    suite = load_suite(name)
    jobs = jobs_of(suite)
    states = []
    for job in jobs:
        config = resolved_config(job_overrides(job, suite))
        state = status(job, config, runs_dir)
        found = reusable(job, config, runs_dir) if state != "done" else None
        if found is not None and not dry_run:
            reuse(job, found, runs_dir)
        states.append((job, "reuse" if found is not None else state))
    todo = [job for job, s in states if s not in ("done", "reuse")]
    stale = sum(s == "stale" for _, s in states)
    reused = sum(s == "reuse" for _, s in states)
    print(f"{suite['name']}: {len(jobs)} jobs, {len(jobs) - len(todo) - reused} finished, "
          + (f"{reused} {'to copy' if dry_run else 'copied'} from other suites (same job, same config), " if reused else "")
          + f"{len(todo)} to run" + (f" ({stale} with an older config)" if stale else ""), flush=True)
    if dry_run:
        for job, s in states:
            print(f"  {s:5s} {job.label}: python train.py {' '.join(job_overrides(job, suite))}")
        return 0
    todo = todo[:max_jobs] if max_jobs is not None else todo
    metric = f"{resolved_config(job_overrides(todo[0], suite))['eval']['splits'][0]}/mean@k" if todo else ""
    walls, failed = [], 0
    for i, job in enumerate(todo, 1):
        try:
            summary = run_job(job, suite, runs_dir, work_dir)
        except RuntimeError as exc:
            failed += 1
            print(f"[{i}/{len(todo)}] FAILED {exc}", file=sys.stderr, flush=True)
            continue
        walls.append(summary["wall_s"])
        print(progress_line(i, len(todo), job, summary, metric, (len(todo) - i) * sum(walls) / len(walls)), flush=True)
    return failed


def finished_summaries(name: str, runs_dir: Path) -> tuple[dict, list[dict]]:
    """The suite and the summaries of its jobs that match the current configs (older ones are left out)."""
    suite = load_suite(name)
    out = []
    for job in jobs_of(suite):
        path = job.summary_path(runs_dir)
        if path.is_file():
            summary = json.loads(path.read_text())
            if is_current(summary, resolved_config(job_overrides(job, suite))):
                out.append(summary)
    return suite, out


def report_suite(name: str, command: str, benchmarks: bool, runs_dir: Path, root: Path = sgpo.ROOT_DIR,
                 show: bool = True, companions: bool = True) -> dict | None:
    suite, summaries = finished_summaries(name, runs_dir)
    if not summaries:
        print(f"{suite['name']}: no finished jobs yet, no report")
        return None
    folder = runs_dir / suite["name"]
    made = time.strftime("%Y-%m-%d %H:%M %Z")
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}"
    if "lrs" in suite:
        report = analysis.analyse_tuning(summaries)
        lines = [f"# Learning-rate tuning (`{name}`), {report['metric']} at the end, median over seeds {suite['seeds']}",
                 "", f"- command: `{command}`", f"- made: {made} on {machine}", "",
                 "| method | " + " | ".join(f"lr {lr:g}" for lr in suite["lrs"]) + " | best |",
                 "|---|" + "---|" * (len(suite["lrs"]) + 1)]
        for m, e in report["methods"].items():
            cells = [f"{e['final'][lr]:.3f} (n={e['seeds'][lr]})" if lr in e["final"] else "n/a" for lr in suite["lrs"]]
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {e['best_lr']:g} |")
        text = "\n".join(lines) + "\n"
    else:
        # the metric the jobs evaluated: the first eval split's mean@k (test; val for development suites)
        report = analysis.analyse(summaries, suite, metric=f"{summaries[0]['config']['eval']['splits'][0]}/mean@k")
        for mix in report["mixes"]:
            jobs = [s for s in summaries if s["mix"] == mix and s["seed"] in seeds_of(suite, mix)]
            plots.plot_curves(jobs, report["metric"], folder / f"curves_{mix}.png", f"mix {mix}",
                              report["mixes"][mix].get("targets"))
        has_plot = plots.plot_ratio_vs_share(report, folder / "ratio_vs_zero_adv.png")
        text = markdown.render(report, suite, command, made, machine, has_plot)
        text += companions_text(suite, report, runs_dir, root) if companions else ""
    report.update(command=command, made=made, machine=machine, sgpo_version=sgpo.__version__)
    atomic_write_json(folder / "report.json", json_safe(report))
    atomic_write_text(folder / "REPORT.md", text)
    if show:
        print(text)
    if benchmarks:
        (root / "benchmarks").mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy(png, root / "benchmarks" / png.name)
        atomic_write_text(root / "BENCHMARKS.md", text.replace("](", "](benchmarks/"))
        atomic_write_json(root / "BENCHMARKS.json", json_safe(report))
    return report


def companions_text(suite: dict, report: dict, runs_dir: Path, root: Path) -> str:
    """The suite's ``companions``: each one's report rebuilt from its current summaries (so a method
    whose config changed since is left out, as in its own report), then its methods in one table;
    their numbers go into ``report['companions']`` too."""
    if not suite["companions"]:
        return ""
    lines = ["", "## Other suites", "",
             "Each on its own seeds, budget and split (conf/bench/<suite>.yaml): compare within a table, not across.", ""]
    report["companions"] = {}
    for other in suite["companions"]:
        try:  # a companion that cannot be reported (a preset it lists is gone...) must not cost this report
            other_suite = load_suite(other)
            found = report_suite(other, f"python -m sgpo.bench {other} --report-only", False, runs_dir, root,
                                 show=False, companions=False)  # one level: suites that name each other do not recurse
        except ValueError as exc:
            print(f"companion {other}: not reported: {exc}", file=sys.stderr)
            lines += [f"### `{other}`", "", f"Not reported: {exc}", ""]
            report["companions"][other] = {"error": str(exc)}
            continue
        if found is None:
            lines += [f"### `{other_suite['name']}`", "", "No finished jobs yet.", ""]
            continue
        lines += markdown.companion_section(other_suite["name"], found, other_suite["baselines"])
        report["companions"][other_suite["name"]] = {
            "jobs": found["jobs"], "metric": found["metric"], "command": found["command"],
            "mixes": {mix: {m: {k: e[k] for k in ("seeds", "ratio_vs", "final", "wasted_share")}
                            for m, e in entry["methods"].items()} for mix, entry in found["mixes"].items()}}
    return "\n".join(lines)


def aa_power_suite(name: str, runs_dir: Path, sizes: tuple[int, ...] = (3, 5, 7, 10, 15)) -> dict | None:
    """The A/A check's estimated pass rate at several seed counts (analysis.aa_power), from every
    finished GRPO job of the suite's default mix (benchmark and A/A seeds together); printed and
    written to benchmarks/runs/<suite>/aa_power.json."""
    suite, summaries = finished_summaries(name, runs_dir)
    grpo = sorted((s for s in summaries if s["mix"] == "default" and s["method"] == "grpo"), key=lambda s: s["seed"])
    if len(grpo) < 6:
        print(f"{suite['name']}: {len(grpo)} finished GRPO jobs on the default mix; the estimate needs at least 6")
        return None
    metric = f"{grpo[0]['config']['eval']['splits'][0]}/mean@k"
    power = analysis.aa_power([analysis.curve(s, metric) for s in grpo], sizes)
    out = {"runs": len(grpo), "seeds": [s["seed"] for s in grpo], "metric": metric, "fraction": 0.9,
           "statistic": analysis.STATISTIC, "sizes": power}
    print(f"A/A pass rate at f90 ({analysis.STATISTIC} ratio), estimated from {len(grpo)} GRPO runs by random "
          "disjoint splits (an estimate for planning, not the check):")
    for n, p in power.items():
        print(f"  {n:2d} seeds per group: passes {p['pass_rate']:.0%} of {p['draws']} splits; "
              f"median interval width {p['median_width']:.2f} (log2 of hi / lo)")
    atomic_write_json(runs_dir / suite["name"] / "aa_power.json", json_safe(out))
    return out


UNCOMPARED = {"wall_s"}  # seconds on the clock: never equal twice


def history_differences(a: dict, b: dict, tol: float = 0.0) -> list[str]:
    """Where two summaries of one job differ: each evaluation's numbers (FLOPs, metrics, ledger) and
    the final ones, beyond ``tol`` (absolute); wall time and paths (which name the folder a job ran
    in) are left out."""
    diffs = []
    if len(a["eval_history"]) != len(b["eval_history"]):
        diffs.append(f"{len(a['eval_history'])} evaluations against {len(b['eval_history'])}")
    pairs = list(zip(a["eval_history"], b["eval_history"])) + [(a["final"], b["final"])]
    for i, (x, y) in enumerate(pairs):
        where = "final" if i == len(pairs) - 1 else f"evaluation {i}"
        for key in sorted((set(x) | set(y)) - UNCOMPARED):
            u, v = x.get(key), y.get(key)
            if isinstance(u, (int, float)) and isinstance(v, (int, float)) and not isinstance(u, bool):
                if abs(float(u) - float(v)) > tol and not (u != u and v != v):  # nan == nan here
                    diffs.append(f"{where}: {key} {u!r} against {v!r}")
            elif not key.endswith("/path") and u != v:  # a path names the folder it ran in
                diffs.append(f"{where}: {key} {u!r} against {v!r}")
    return diffs


def reproduce(name: str, label: str, runs_dir: Path, work_dir: Path) -> int:
    """Run one finished job again (scratch summary under ``work_dir``) and compare it with its
    committed summary: on the CPU the pipeline is deterministic, so any difference says the code (or
    the machine's numerics) changed what the job computes. 0 when identical, 1 otherwise."""
    suite = load_suite(name)
    jobs = {job.label: job for job in jobs_of(suite)}
    if label not in jobs:
        raise ValueError(f"--reproduce {label!r}: no such job in {suite['name']} (e.g. {next(iter(jobs))})")
    job = jobs[label]
    committed_path = job.summary_path(runs_dir)
    if not committed_path.is_file():
        raise ValueError(f"--reproduce {label}: {committed_path} does not exist (run the job first)")
    committed = json.loads(committed_path.read_text())
    again = run_job(job, suite, work_dir / "reproduce" / "runs", work_dir / "reproduce")
    diffs = history_differences(committed, again)
    print(f"{label}: run again at {again['git_commit']} (committed at {committed.get('git_commit')}): "
          + ("identical evaluation history and ledger" if not diffs else f"{len(diffs)} differences"))
    for d in diffs[:20]:
        print("  " + d)
    return 1 if diffs else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sgpo.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", help="pool, a suite in conf/bench/ (quick, full, ablations, pods, dev, tune) "
                                      "or a suite YAML file")
    parser.add_argument("--benchmarks", action="store_true", help="also write BENCHMARKS.md/json at the repo root")
    parser.add_argument("--report-only", action="store_true", help="run nothing; rebuild the report from the summaries")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs, their state and commands; run nothing")
    parser.add_argument("--reproduce", metavar="MIX/METHOD-sSEED", default=None,
                        help="run this finished job again in --work-dir and compare it with its committed summary")
    parser.add_argument("--aa-power", action="store_true",
                        help="run nothing; estimate the A/A check's pass rate at several seed counts from the "
                             "suite's finished GRPO jobs (benchmarks/runs/<suite>/aa_power.json)")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after this many jobs (continue later)")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help="where job summaries go")
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR, help="where the jobs' run folders go")
    parser.add_argument("--root", type=Path, default=sgpo.ROOT_DIR, help="where --benchmarks writes BENCHMARKS.md/json")
    parser.add_argument("--pool-out", type=Path, default=DEFAULT_OUT,
                        help="pool: the selection profile file (a name ending in .json.gz is written gzipped)")
    parser.add_argument("--candidates", type=int, default=8192, help="pool: train problems to profile")
    parser.add_argument("--confirm-classes", nargs="+", default=["trivial", "unsolvable"],
                        choices=["trivial", "unsolvable"],
                        help="pool: which extremes of the first pass get the confirming samples")
    args = parser.parse_args(argv)
    command = "python -m sgpo.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.suite == "pool":
        data = make_pool(candidates=args.candidates, out=args.pool_out,
                         confirm_classes=tuple(args.confirm_classes))
        print(f"pool: {args.pool_out}: {data['classes']}")
        return 0
    try:
        if args.reproduce:
            return reproduce(args.suite, args.reproduce, args.runs_dir, args.work_dir)
        if args.aa_power:
            return 0 if aa_power_suite(args.suite, args.runs_dir) is not None else 1
        failed = 0
        if not args.report_only:
            failed = run_suite(args.suite, args.max_jobs, args.dry_run, args.runs_dir, args.work_dir)
        if not args.dry_run:
            report_suite(args.suite, command, args.benchmarks, args.runs_dir, args.root)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

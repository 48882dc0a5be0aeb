"""The compute-matched benchmark (``python -m sgpo.bench``): suites of train.py jobs run one by one and
resumably, compact job summaries under benchmarks/runs/, and the report (FLOPs-to-target ratios with
bootstrap intervals per difficulty mix, the A/A check) in BENCHMARKS.md / BENCHMARKS.json."""

"""Cross-validated quality of the finance scorecard on the shared German Credit data.

    .venv/bin/python benchmarks/finance_cv.py [--csv PATH] [--seeds 0 1 2]
        [--algorithms random_forest woe_logistic]

Prints, per algorithm and shuffle seed, the stratified 5-fold CV AUC (mean ± std over the folds) and
the pooled out-of-fold AUC, KS, Gini and Brier score, then the time to train the default scorecard.
``benchmarks/finance_bench.py`` imports :func:`cv_report`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from apps.finance import scorecard  # noqa: E402


def default_csv() -> Path:
    """``FINANCE_TRAIN_CSV`` or ``<repo>/../shared/data/finance/german_credit_train.csv``."""
    return Path(os.environ.get("FINANCE_TRAIN_CSV",
                               ROOT.parent / "shared" / "data" / "finance" / "german_credit_train.csv"))


def cv_report(csv_path: str | Path | None = None, *, seeds: tuple[int, ...] = (0,),
              algorithms: tuple[str, ...] = scorecard.ALGORITHMS, folds: int = 5) -> dict:
    """Cross-validation figures of each algorithm and seed, plus the default model's training time.

    Returns ``{"csv", "rows", "results": [{"algorithm", "seed", "folds", "fold_auc", "auc_mean", "auc_std",
    "auc_pooled", "ks", "gini", "brier"}], "train_seconds", "selected_algorithm", "cv_auc"}``
    (``cv_auc`` is the selected default model's mean fold AUC at seed 0).
    """
    path = Path(csv_path) if csv_path else default_csv()
    df = pd.read_csv(path)
    results = [scorecard.cross_validate(df, algorithm=a, seed=s, folds=folds)
               for a in algorithms for s in seeds]
    started = time.perf_counter()
    model = scorecard.train_scorecard(df, seed=0, folds=folds)
    return {"csv": str(path), "rows": len(df), "results": results,
            "train_seconds": round(time.perf_counter() - started, 2),
            "selected_algorithm": model.algorithm, "cv_auc": model.metadata["metrics"]["cv_auc"],
            "metadata_metrics": model.metadata["metrics"]}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=None, help="labelled CSV (default: the shared German Credit file)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--algorithms", nargs="+", default=list(scorecard.ALGORITHMS),
                        choices=scorecard.ALGORITHMS)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    report = cv_report(args.csv, seeds=tuple(args.seeds), algorithms=tuple(args.algorithms), folds=args.folds)
    print(f"data: {report['csv']} ({report['rows']} rows), stratified {args.folds}-fold CV")
    print(f"{'algorithm':<15}{'seed':>5}{'CV AUC':>16}{'pooled AUC':>12}{'KS':>8}{'Gini':>8}{'Brier':>8}")
    for r in report["results"]:
        cv = f"{r['auc_mean']:.4f} ± {r['auc_std']:.4f}"
        print(f"{r['algorithm']:<15}{r['seed']:>5}{cv:>16}{r['auc_pooled']:>12.4f}{r['ks']:>8.4f}"
              f"{r['gini']:>8.4f}{r['brier']:>8.4f}")
    for algorithm in args.algorithms:
        means = [r["auc_mean"] for r in report["results"] if r["algorithm"] == algorithm]
        if len(means) > 1:
            print(f"{algorithm}: mean CV AUC over seeds {args.seeds}: {sum(means) / len(means):.4f}")
    print(f"default scorecard (train_scorecard, seed 0): {report['selected_algorithm']}, "
          f"CV AUC {report['cv_auc']:.4f}, trained in {report['train_seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time and peak memory of consensus clustering, printed as a Markdown table.

Usage: .venv/bin/python scripts/benchmark_consensus.py [--quick] [--features 100]

Each configuration (items x repetitions, ks 2..6, k-means + Ward, 100 features) runs in a
fresh process (multiprocessing "spawn"), so that its peak resident memory (``ru_maxrss``)
is its own. The data are four Gaussian clusters in 10 of the features plus noise, scaled to
unit variance. Columns: wall seconds of ``consensus_cluster``, seconds per repetition, the
peak of Python-tracked allocations during a second, untimed call (tracemalloc, which slows
the call about threefold; numpy's arrays included),
the process's peak RSS, the RSS after imports and data (before the call), and the size of
the ``n x n`` float32 count matrices, ``4 * n**2 * (len(ks) + 1)`` bytes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

KS = range(2, 7)
ALGORITHMS = ("kmeans", "hierarchical")


def _data(n: int, features: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    x = rng.normal(size=(n, features))
    x[:, :10] += 3.0 * rng.normal(size=(4, 10))[truth]
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _run(n: int, reps: int, features: int) -> dict:
    """One configuration, inside a fresh process."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "workflow" / "scripts"))
    from rdls.subtypes.consensus import consensus_cluster

    x = _data(n, features)
    consensus_cluster(x[:20], ks=KS, reps=1, item_fraction=1.0, seed=0)  # imports, first calls
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = consensus_cluster(x, ks=KS, reps=reps, algorithms=ALGORITHMS, seed=1)
    seconds = time.perf_counter() - started
    del result
    # tracemalloc slows the call about threefold, so it gets a second, untimed run
    tracemalloc.start()
    result = consensus_cluster(x, ks=KS, reps=reps, algorithms=ALGORITHMS, seed=1)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n": n,
        "reps": reps,
        "seconds": seconds,
        "s_per_rep": seconds / reps,
        "traced_peak_mb": traced_peak / 1e6,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": before_mb,
        "count_matrices_mb": 4 * n**2 * (len(result.ks) + 1) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n 100 and 300, 20 repetitions")
    parser.add_argument("--features", type=int, default=100)
    args = parser.parse_args()
    sizes, repetitions = ((100, 300), (20,)) if args.quick else ((100, 300, 931), (50, 200))
    rows = []
    context = multiprocessing.get_context("spawn")
    for n in sizes:
        for reps in repetitions:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                rows.append(pool.submit(_run, n, reps, args.features).result())
            print(f"n={n} reps={reps}: {rows[-1]['seconds']:.1f} s", file=sys.stderr)
    header = ("| n | reps | seconds | s / rep | tracemalloc peak (MB) | max RSS (MB) | "
              "RSS before (MB) | count matrices (MB) |")  # fmt: skip
    print(header)
    print("|" + "---|" * 8)
    for r in rows:
        print(f"| {r['n']} | {r['reps']} | {r['seconds']:.1f} | {r['s_per_rep']:.3f} | "
              f"{r['traced_peak_mb']:.0f} | {r['max_rss_mb']:.0f} | {r['rss_before_mb']:.0f} | "
              f"{r['count_matrices_mb']:.1f} |")  # fmt: skip
    print(f"\n{args.features} features, ks 2..6, {' + '.join(ALGORITHMS)}, item_fraction 0.8; "
          f"{multiprocessing.cpu_count()} cores; one process per configuration.")  # fmt: skip
    for n in (5000, 20000):
        print(f"Count matrices alone at n = {n}: {4 * n**2 * (len(KS) + 1) / 1e9:.1f} GB.")


if __name__ == "__main__":
    main()

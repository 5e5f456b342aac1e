"""Command line: ``python -m rdls.demo --scale tiny --seed 42 --out results/demo/tiny``."""

import argparse
import logging
import time

from rdls.demo import SCALES, generate_cohort


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m rdls.demo",
        description="Write the synthetic rectal-cancer cohort with planted subtypes: sheets, "
        "MRI, slides, bulk and single-cell RNA-seq, and the truth tables in truth/.",
    )
    parser.add_argument("--scale", choices=list(SCALES), default="default",
                        help="cohort size (default: %(default)s)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--out", required=True, help="folder to write the cohort to")
    parser.add_argument("--threads", type=int, default=1,
                        help="processes to generate items in parallel (default: 1)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    plan = generate_cohort(scale=args.scale, seed=args.seed, root=args.out, threads=args.threads)
    logging.info(
        "wrote the %s demo cohort (%d subjects) to %s in %.1f s",
        args.scale, plan.scale.n_subjects, args.out, time.perf_counter() - started,
    )  # fmt: skip


if __name__ == "__main__":
    main()

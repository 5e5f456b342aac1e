"""Command line: ``python -m rdls.demo --scale tiny --seed 42 --out results/demo/tiny``.

``--mri-signal`` and ``--centre-case-mix`` choose a variant of the cohort (the config's
``demo.mri_signal`` and ``demo.centre_case_mix``); ``--modalities mri`` writes the sheets, the
truth and the MRI only.
"""

import argparse
import logging
import time

from rdls.demo import MODALITIES, MRI_SIGNALS, SCALES, generate_cohort


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
    parser.add_argument("--mri-signal", choices=MRI_SIGNALS, default="mixed",
                        help="how the subtypes differ in the MRI: all mechanisms at once "
                        "(mixed), one of size, margin, texture, intensity, or none "
                        "(default: %(default)s)")  # fmt: skip
    parser.add_argument("--centre-case-mix", action="store_true",
                        help="subtype proportions that differ strongly by centre")  # fmt: skip
    parser.add_argument("--modalities", nargs="+", choices=MODALITIES, default=list(MODALITIES),
                        help="modalities to write (default: all)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    plan = generate_cohort(
        scale=args.scale,
        seed=args.seed,
        root=args.out,
        threads=args.threads,
        mri_signal=args.mri_signal,
        centre_case_mix=args.centre_case_mix,
        modalities=args.modalities,
    )
    logging.info(
        "wrote the %s demo cohort (%d subjects, MRI signal %s%s) to %s in %.1f s",
        args.scale, plan.scale.n_subjects, args.mri_signal,
        ", centre case mix" if args.centre_case_mix else "", args.out,
        time.perf_counter() - started,
    )  # fmt: skip


if __name__ == "__main__":
    main()

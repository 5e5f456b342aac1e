"""Synthetic multi-modal rectal-cancer cohort with planted subtypes.

The demo cohort is the embedded default of the workflow and the ground truth of its tests.
It plants three subtypes (RDLS1 immune-excluded with the worst recurrence-free survival,
RDLS2 lymphocyte-rich with the best, RDLS3 stromal in between) in every modality:

- MRI: tumour size, margin and texture, with centre (scanner) effects and rater variability;
- clinical data and recurrence-free survival from a proportional-hazards model;
- whole-slide images: lymphocyte density and placement, stroma fraction;
- bulk RNA-seq: immune, stromal and TGF-beta exclusion modules;
- scRNA-seq: cell-type composition, with per-patient batch effects.

The truth tables are written to ``truth/`` beside the data, for tests and validation code
only: the analysis never reads them.

Use :func:`plan_cohort` for the sheets alone (cheap), the ``generate_*`` functions for one
modality's files, or :func:`generate_cohort` (also ``python -m rdls.demo``) for everything.
"""

from rdls.demo._generate import (
    BULK_COUNTS,
    generate_bulk,
    generate_cohort,
    generate_mri,
    generate_scrna,
    generate_slides,
    root_of,
    sheet_frames,
    write_sheets,
)
from rdls.demo._plan import SCALES, SUBTYPES, DemoPlan, plan_cohort

__all__ = [
    "BULK_COUNTS",
    "SCALES",
    "SUBTYPES",
    "DemoPlan",
    "generate_bulk",
    "generate_cohort",
    "generate_mri",
    "generate_scrna",
    "generate_slides",
    "plan_cohort",
    "root_of",
    "sheet_frames",
    "write_sheets",
]

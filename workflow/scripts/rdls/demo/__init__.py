"""Synthetic multi-modal rectal-cancer cohort with planted subtypes.

The demo cohort is the embedded default of the workflow and the ground truth of its tests.
It plants three subtypes (RDLS1 immune-excluded with the worst recurrence-free survival,
RDLS2 lymphocyte-rich with the best, RDLS3 stromal in between) in every modality:

- MRI: tumour size, margin and texture, with centre (scanner) effects and rater variability
  (``mri_signal``: all at once as ``mixed``, one mechanism at a time, or ``none``);
- clinical data and recurrence-free survival from a proportional-hazards model;
- whole-slide images: lymphocyte density and placement, stroma fraction;
- bulk RNA-seq: immune, stromal and TGF-beta exclusion modules;
- scRNA-seq: cell-type composition, with per-patient batch effects.

With ``centre_case_mix`` the subtype proportions differ strongly by centre.

The truth tables are written to ``truth/`` beside the data, for tests and validation code
only: the analysis never reads them.

Use :func:`plan_cohort` for the sheets alone (cheap), the ``generate_*`` functions for one
modality's files, or :func:`generate_cohort` (also ``python -m rdls.demo``) for everything.
"""

from rdls.demo._generate import (
    BULK_COUNTS,
    MODALITIES,
    folder_name,
    generate_bulk,
    generate_cohort,
    generate_mri,
    generate_scrna,
    generate_slides,
    root_of,
    sheet_frames,
    write_sheets,
)
from rdls.demo._mri_variants import MRI_SIGNALS
from rdls.demo._plan import CASE_MIX_PROPORTIONS, SCALES, SUBTYPES, DemoPlan, plan_cohort

__all__ = [
    "BULK_COUNTS",
    "CASE_MIX_PROPORTIONS",
    "MODALITIES",
    "MRI_SIGNALS",
    "SCALES",
    "SUBTYPES",
    "DemoPlan",
    "folder_name",
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

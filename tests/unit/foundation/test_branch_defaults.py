"""The scRNA and bulk packages' own defaults (used when they are called outside the workflow)
are the config schema's: one set of numbers, whichever way a step is run."""

import pytest

from rdls.bulk import steps as bulk
from rdls.config import validate_config
from rdls.scrna import _settings as scrna


@pytest.mark.parametrize(
    ("branch", "block", "defaults"),
    [
        ("scrna", "qc", scrna.QC_DEFAULTS),
        ("scrna", "integrate", scrna.INTEGRATE_DEFAULTS),
        ("scrna", "annotate", scrna.ANNOTATE_DEFAULTS),
        ("scrna", "by_subtype", scrna.BY_SUBTYPE_DEFAULTS),
        ("bulk", "deseq2", bulk.DESEQ2_DEFAULTS),
        ("bulk", "overview", bulk.OVERVIEW_DEFAULTS),
        ("bulk", "gsea", bulk.GSEA_DEFAULTS),
        ("bulk", "scores", bulk.SCORES_DEFAULTS),
        ("bulk", "deconvolution", bulk.DECONVOLUTION_DEFAULTS),
    ],
)
def test_package_defaults_are_the_schema_defaults(branch, block, defaults):
    schema = validate_config({})[branch][block]
    # Paths of shipped reference files are the workflow's business, not the package's.
    schema = {k: v for k, v in schema.items() if k != "gene_sets"}
    assert schema == defaults

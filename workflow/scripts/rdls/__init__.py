"""rdls: radiomics-based deep-learning subtypes of rectal cancer.

The package holds all of the workflow's logic; Snakemake rules only wire files to it.
Keep this module free of heavy imports: each branch's environment holds only its own
libraries, so importing ``rdls`` must not pull in torch, scanpy or openslide.
"""

__version__ = "0.1.0"

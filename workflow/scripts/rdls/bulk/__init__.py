"""Bulk RNA-seq: counts in, differential expression, gene sets, scores and deconvolution out.

Modules, each importable alone (heavy libraries are imported inside the functions that use
them, so that importing this package costs nothing):

- :mod:`rdls.bulk.counts`: the count matrix read and checked, low-count genes filtered;
- :mod:`rdls.bulk.de`: DESeq2 (PyDESeq2) for one contrast, and the contrasts of a set of
  subtypes;
- :mod:`rdls.bulk.genesets`: GMT files, preranked GSEA and single-sample GSEA scores
  (ESTIMATE immune and stromal scores);
- :mod:`rdls.bulk.deconvolution`: a signature matrix from annotated scRNA-seq and
  non-negative least squares fractions of each bulk sample;
- :mod:`rdls.bulk.steps`: the rules' work, files in and files out.
"""

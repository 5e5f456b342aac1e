"""Single-cell RNA-seq: QC, integration, cell-type annotation and composition by subtype.

The rules call :mod:`rdls.scrna.steps` (DESIGN.md: scrna); the modules underneath compute on
AnnData objects and tables. scanpy is imported only inside them, never here.
"""

"""Whole-slide images: tissue, tiles, lymphocytes and stroma per slide (DESIGN.md: wsi)."""

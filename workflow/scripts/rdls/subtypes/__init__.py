"""Subtype discovery and assignment (DESIGN.md: subtypes)."""

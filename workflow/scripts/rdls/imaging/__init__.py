"""Imaging branch: MRI ingestion, preprocessing, radiomics and the self-supervised encoder.

Modules are imported one by one by the rule scripts, so that a rule pays only for the
libraries it uses (SimpleITK for ingestion, pyradiomics for radiomics, torch for the encoder).
"""

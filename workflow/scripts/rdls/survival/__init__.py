"""Survival analysis: Kaplan-Meier, Cox, the recurrence risk score and model comparison.

DESIGN.md: survival.
"""

"""Evaluation: metrics with FreiHAND definitions, real-dataset runs and official submission files."""

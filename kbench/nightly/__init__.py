"""Nightly: compare two sweeps, the history of many, the HTML report, the night's run."""

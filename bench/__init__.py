"""Benchmarks: Modelyard against MLflow and DVC on the same data, in one run (``python -m bench``).

Kept free of imports: the driver modules under ``bench.drivers`` also run inside the
anchors' virtual environment, where only the standard library and the anchor are installed.
"""

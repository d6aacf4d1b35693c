"""Evaluation: benchmark runners, metrics (``videor1.eval.metrics``) and reports.

Submodules are imported directly so that importing the package stays cheap.
"""

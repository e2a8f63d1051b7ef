"""Evaluation: the held-out split by file (splits.py) and the code-search evaluator with its
promotion gate (evaluate.py)."""

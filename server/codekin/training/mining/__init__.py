"""Triplet mining: source snippets (snippets.py) cut to training size (cutting.py), positives
(positives.py, history.py, nif.py), hard negatives (negatives.py), the generator
(triplets.py) and its report (analysis.py)."""

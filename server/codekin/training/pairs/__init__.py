"""Positive (query, code) pairs as the trainer takes them (batches.py) and the renamed copy of a
function (renaming.py). Plain Python: the trainer, the miners and the held-out queries share
it, and it imports nothing of theirs (nor tree-sitter)."""

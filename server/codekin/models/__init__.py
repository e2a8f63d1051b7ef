"""Model versions: the registry under `.codekin/models/` (registry.py), atomic hashed model
directories (checkpoints.py), and which version embeds for a repository (serving.py).

Below the engine, the indexer, training, jobs and the dashboard: it imports none of them.
"""

"""Judging a candidate on the search users get: held-out queries built from the repository
(queries.py), scored through the real hybrid search (search.py), and the run's verdict (judge.py)."""

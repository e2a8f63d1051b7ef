"""The nightly learning loop: schedule (scheduler.py), retraining (retrain.py), re-embedding and hot
reload (reembed.py, loop.py), which model serves a repository (serving.py), CLI (cli_jobs.py)."""

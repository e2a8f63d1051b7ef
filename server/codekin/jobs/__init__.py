"""The nightly learning loop: schedule (scheduler.py), retraining (retrain.py), re-embedding and hot
reload (reembed.py, loop.py), CLI (cli_jobs.py). Which model serves a repository: codekin.models.serving."""

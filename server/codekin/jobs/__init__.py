"""The nightly learning loop: schedule (scheduler.py), retraining (retrain.py), re-embedding and hot
reload (reembed.py, loop.py). Which model serves a repository: codekin.models.serving; the
commands: codekin.cli.jobs."""

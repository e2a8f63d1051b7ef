"""Training: triplet mining (triplets.py), fine-tuning (trainer.py); model
versions live in codekin.models.

Import the submodules directly (`from codekin.training.triplets import ...`): this package
imports nothing itself, so loading one part never pulls in the others' dependencies.
"""

"""Training: triplet mining (triplets.py), fine-tuning (trainer.py), model versions (registry.py).

Import the submodules directly (`from codekin.training.triplets import ...`): this package
imports nothing itself, so loading one part never pulls in the others' dependencies.
"""

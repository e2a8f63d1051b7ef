"""Training, by role: triplet mining (mining/), the (query, code) pairs the trainer and the
miners share (pairs/), fine-tuning (trainer/), evaluation
(evaluation/), and the run that ties them together (pipeline.py). Model versions live in
codekin.models.

Import the submodules directly (`from codekin.training.mining.triplets import ...`): these
packages import nothing themselves, so loading one part never pulls in the others' dependencies.
"""

"""Two scorings of one model give the same numbers: the held-out set is built the same way
every time, and the search scores of a model do not depend on the process, its hash seed
or its thread count (a fresh scratch index each time). A tiny random-init model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codekin.config import load_config
from codekin.training.judging.judge import held_out_files
from codekin.training.judging.queries import build_eval_set
from tests.conftest import make_repo
from tests.test_training_recipe import WORDS, WORKER
from tests.tiny_model import build_tiny_model

SCORE = """
import json, sys
from pathlib import Path
import torch
from codekin.config import load_config
from codekin.training.judging.judge import held_out_files
from codekin.training.judging.queries import build_eval_set
from codekin.training.judging.search import SearchEvaluator, model_encoder
from codekin.training.trainer.model import load_model

root, model, threads = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
config = load_config(root, {"model": {"device": "cpu"}})
eval_set = build_eval_set(root, held_out_files(root, config, 13), config, 13,
                          distractors=held_out_files(root, config, 13, "train"))
with SearchEvaluator(eval_set, config.search) as evaluator:
    print(json.dumps(evaluator(model_encoder(load_model(model, "cpu", 64)), "model"), sort_keys=True))
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = {f"lib/{w}.ex": WORKER.format(Name=w.title(), name=w) for w in WORDS}
    return make_repo(tmp_path_factory.mktemp("determinism") / "repo", files)


def test_the_held_out_set_is_the_same_every_time(repo: Path) -> None:
    config = load_config(repo)

    def build() -> list[object]:
        found = build_eval_set(repo, held_out_files(repo, config, 13), config, 13,
                               distractors=held_out_files(repo, config, 13, "train"))
        return [(c.path, c.start_line, c.text) for c in found.chunks] + found.queries

    first = build()
    assert first == build() and any(getattr(q, "kind", "") == "doc_to_code" for q in first)


@pytest.mark.slow
@pytest.mark.storm  # two whole scorings (about 25 s): CI runs it after the README's command
def test_two_scorings_of_one_model_give_the_same_numbers(repo: Path, tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny")
    runs = []
    for hash_seed, threads in (("1", 1), ("2", 2)):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, "-c", SCORE, str(repo), str(model), str(threads)], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert runs[0]["search_doc_to_code_queries"] >= 1 and "search_doc_to_code_mrr@10" in runs[0]

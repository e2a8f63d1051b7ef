"""training.mode, the nightly's choice: `adapter` fits only the query adapter, `finetune` only
fine-tunes, `auto` fits the adapter first and keeps a fine-tune only when it passes the gate
and gains more. Real pipeline runs on a small Elixir repository with a tiny random-init model."""

from __future__ import annotations

from pathlib import Path

import pytest

from codekin.config import load_config
from codekin.errors import TrainingError
from codekin.indexer import Indexer
from codekin.jobs.retrain import RetrainOptions, pipeline_options, progress_step, retrain_steps
from codekin.models.adapters import AdapterStore
from codekin.models.registry import BASE, ModelRegistry
from codekin.training.pipeline import PipelineOptions, run_pipeline
from codekin.training.trainer.args import TrainingArguments
from tests.test_training_recipe import WORDS, WORKER
from tests.tiny_model import build_tiny_model

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def _indexed(repo_factory, model: Path) -> tuple[Path, object]:
    root = repo_factory({f"lib/{w}.ex": WORKER.format(Name=w.title(), name=w) for w in WORDS})
    config = load_config(root, {"model": {"primary": str(model), "fallback": str(model), "device": "cpu",
                                          "backend": "torch", "max_tokens": 64}})
    Indexer(root, config).run()
    return root, config


def _options(mode: str) -> PipelineOptions:
    args = TrainingArguments(learning_rate=2e-3, batch_size=8, epochs=1, device="cpu", max_seq_length=64)
    return PipelineOptions(args=args, count=40, resume=False, mode=mode)


def _steps(lines: list[str]) -> int:
    return sum(step[0] for step in (progress_step(line, 1) for line in lines) if step is not None)


def test_adapter_mode_fits_the_adapter_and_leaves_the_model(tiny_model_dir: Path, repo_factory) -> None:
    root, config = _indexed(repo_factory, tiny_model_dir)
    lines: list[str] = []
    result = run_pipeline(root, config, _options("adapter"), lines.append)
    assert result.kind == "adapter" and result.status in ("promoted", "rejected")
    assert result.version.startswith("adapter-") and AdapterStore(root).manifest(result.version)
    assert any(line.startswith("Adapter pairs: ") for line in lines)
    assert not any(line.startswith("Fine-tuning ") for line in lines)
    assert ModelRegistry(root).versions() == [] and ModelRegistry(root).active_ref() == BASE
    assert result.message() == result.reason
    assert _steps(lines) == retrain_steps("adapter", 1)  # the editor's progress ends full


def test_auto_mode_fits_the_adapter_then_fine_tunes(tiny_model_dir: Path, repo_factory) -> None:
    root, config = _indexed(repo_factory, tiny_model_dir)
    lines: list[str] = []
    result = run_pipeline(root, config, _options("auto"), lines.append)
    adapter_line = next(i for i, line in enumerate(lines) if line.startswith("Adapter pairs: "))
    tune_line = next(i for i, line in enumerate(lines) if line.startswith("Fine-tuning "))
    assert adapter_line < tune_line and result.kind == "finetune" and result.version == "v1"
    assert result.adapter["version"].startswith("adapter-") and result.adapter["status"] in ("promoted", "rejected")
    assert result.message().startswith(f"query adapter {result.adapter['version']} {result.adapter['status']}: ")
    assert f"; fine-tune v1 {result.status}: " in result.message()
    # one encoder scores every candidate: the adapter's and the fine-tune's gate see the same active model
    search = {k: v for k, v in result.active_metrics.items() if k.startswith("search_")}
    assert search and {k: result.adapter["active_metrics"][k] for k in search} == search
    assert _steps(lines) == retrain_steps("auto", 1)
    # fitted for the table search answers from, so a promoted adapter moves the user's queries
    from codekin.index.store import IndexStore

    assert result.adapter["applies_to"] == IndexStore(root).state()["active_key"]
    served = result.adapter["promoted"] or result.promoted
    assert result.outcome == ("promoted" if served else "rejected")


def test_mode_is_a_setting_with_a_clear_error(repo_factory) -> None:
    root = repo_factory({"README.md": "x\n"})
    assert pipeline_options(load_config(root), RetrainOptions()).mode == "auto"
    (root / ".codekin").mkdir(exist_ok=True)
    (root / ".codekin" / "config.toml").write_text('[training]\nmode = "finetune"\n', encoding="utf-8")
    assert pipeline_options(load_config(root), RetrainOptions()).mode == "finetune"
    with pytest.raises(TrainingError, match="training mode must be one of auto, adapter, finetune, got 'both'"):
        PipelineOptions(mode="both").validate()

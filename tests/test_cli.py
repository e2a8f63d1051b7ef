"""The `codekin` command end to end against real repositories (exact output, exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from codekin.cli import main
from tests.samples import CART, LEDGER, RETRY

pytestmark = pytest.mark.slow


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codekin.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_index_search_similar_status_json(repo_factory, capsys):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER,
                         "logo.png": b"\x89PNG\x00"})
    assert main(["index", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["files"], summary["chunks"], summary["new_embeddings"]) == (4, 5, 5)
    assert summary["skipped"] == {"binary": 1}

    assert main(["search", "retry with exponential backoff", "--repo", str(root), "--json", "--limit", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0] == {"path": "lib/retry.ex", "start_line": 2, "end_line": 11,
                       "symbol": "Shop.Retry.with_backoff/2", "language": "elixir", "kind": "function",
                       "score": hits[0]["score"], "cosine": hits[0]["cosine"], "root": str(root)}
    assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"] > 0 and 0 < hits[0]["cosine"] <= 1

    assert main(["similar", str(root / "lib/cart.ex") + ":11", "--json", "--mode", "dense"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["symbol"] == "Shop.Ledger.total/2"

    assert main(["status", str(root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["chunks"], status["files"], status["pending"]) == (5, 3, {"changed": 0, "new": 0, "removed": 0})


def test_human_output_and_summary_line(repo_factory):
    root = repo_factory({"lib/cart.ex": CART})
    out = run("index", str(root))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Indexed 1 files (1 changed, 0 removed): 3 chunks, 3 new embeddings on cpu, "
                                 "0 skipped in ")
    assert out.stdout.rstrip().endswith("embeddings/s)")
    out = run("search", "add an item to the cart", "--limit", "1", cwd=root)
    assert out.stdout.splitlines()[0].endswith("lib/cart.ex:4-7  Shop.Cart.add_item/3")
    assert out.stderr == ""


@pytest.mark.parametrize(("args", "code", "message"), [
    (["search", "anything"], 7, "no index in"),
    (["similar", "nowhere.ex"], 3, "cannot read location"),
    (["index", "/definitely/not/here"], 3, "is not a directory"),
])
def test_errors_say_what_to_do(tmp_path, args, code, message):
    out = run(*args, cwd=tmp_path)
    assert out.returncode == code
    assert message in out.stderr and out.stderr.startswith("codekin: error:")


def test_doctor_reports_each_check(repo_factory):
    root = repo_factory({"lib/cart.ex": CART})
    out = run("doctor", str(root), "--json", "--skip-model")
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert checks["grammars"]["ok"] and checks["lancedb"]["ok"]
    assert not checks["index"]["ok"] and checks["index"]["fix"] == f"codekin index {root}"
    assert out.returncode == 1


def test_doctor_times_embedding_and_names_the_cpus_int8_instructions(minilm, tmp_path):
    from codekin.doctor import _embedding_speed_check, cpu_vector_features

    check = _embedding_speed_check(minilm)
    assert check.ok and " chunks/s (" in check.detail and "a 10,000-chunk index embeds in" in check.detail
    rate = float(check.detail.split(" chunks/s")[0])
    assert rate > 0
    cpuinfo = tmp_path / "cpuinfo"
    for flags, says in [("fpu avx avx2 avx512f avx512_vnni", "AVX-512 VNNI: int8 runs fast"),
                        ("fpu avx avx2 avx_vnni", "AVX-VNNI: int8 runs fast"),
                        ("fpu avx avx2 fma", "AVX2 without VNNI: int8 gains little over fp32"),
                        ("fpu sse4_2", "no AVX2: embedding is slow on this CPU")]:
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert cpu_vector_features(cpuinfo) == says
    assert cpu_vector_features(tmp_path / "missing") == "CPU features unknown"

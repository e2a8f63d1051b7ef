"""The dashboard from a real metrics.db with several runs: HTML content, the CLI, the localhost
server, and a real headless Chromium screenshot showing the charts drawn."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest

from codekin.cli import main as cli_main
from codekin.dashboard.report import collect, render
from codekin.dashboard.server import DashboardServer
from codekin.metrics import MetricsStore
from codekin.models.registry import ModelRegistry
from tests.http_raw import get_with_host

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# (new version, promoted, mrr before, mrr after, accuracy before, accuracy after, losses per epoch)
RUNS = [
    ("v1", True, 0.41, 0.52, 0.78, 0.84, [0.31, 0.22, 0.17]),
    ("v2", False, 0.52, 0.50, 0.84, 0.83, [0.20, 0.18, 0.17]),
    ("v3", True, 0.52, 0.58, 0.84, 0.88, [0.19, 0.14, 0.11]),
    ("v4", True, 0.58, 0.61, 0.88, 0.90, [0.15, 0.12, 0.10]),
]


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A repository state dir with four training runs, one failed run, two re-embeds and versions."""
    root = tmp_path / "repo"
    registry = ModelRegistry(root)
    active = "base"
    with MetricsStore(root) as metrics:
        for version, promoted, mrr0, mrr1, acc0, acc1, losses in RUNS:
            run = metrics.start_run(base_version=active, new_version=version, base_model="default", device="cpu",
                                    triplets=1000, epochs=len(losses), learning_rate=1e-5, batch_size=16)
            for epoch, loss in enumerate(losses, 1):
                metrics.record_epoch(run, epoch, loss, acc1 - 0.01 * (len(losses) - epoch), 12.0)
            search = {"search_symbol_mrr@10": 0.9, "search_code_to_code_mrr@10": 0.8, "search_commit_mrr@10": 0.3}
            metrics.record_evals(run, active, "eval", {"mrr@10": mrr0, "triplet_accuracy": acc0,
                                                       "search_doc_to_code_mrr@10": mrr0, **search})
            metrics.record_evals(run, version, "eval", {"mrr@10": mrr1, "triplet_accuracy": acc1,
                                                        "search_doc_to_code_mrr@10": mrr1, **search})
            reason = "MRR@10 +0.05" if promoted else "does not beat the active model"
            metrics.finish_run(run, "completed", promoted=int(promoted), reason=reason)
            created = registry.create("default", active, triplets=1000)
            registry.update(created, status="promoted" if promoted else "rejected", reason=reason,
                            metrics={"candidate": {"mrr@10": mrr1, "triplet_accuracy": acc1, "recall@10": 0.7}})
            if promoted:
                active = version
                registry._set_active(version)
            if version == "v3":
                failed = metrics.start_run(base_version=active, device="cpu")
                metrics.finish_run(failed, "failed", reason="interrupted")
        for chunks, rate in ((380, 41.0), (412, 44.5)):
            job = metrics.start_embedding_job(model_version=active, model_key="k", device="cpu")
            metrics.finish_embedding_job(job, "completed", chunks, embeddings_per_second=rate)
    return root


def test_collect_pairs_before_and_after_per_run(history: Path):
    data = collect(history)
    assert [(r["new_version"], r["before"].get("mrr@10"), r["after"].get("mrr@10")) for r in data["runs"]] == [
        ("v1", 0.41, 0.52), ("v2", 0.52, 0.50), ("v3", 0.52, 0.58), (None, None, None), ("v4", 0.58, 0.61)]
    assert [len(r["epoch_rows"]) for r in data["runs"]] == [3, 3, 3, 0, 3]
    assert [j["chunks"] for j in data["embedding_jobs"]] == [380, 412]
    assert data["active"] == "v4" and [v["version"] for v in data["versions"]] == ["v1", "v2", "v3", "v4"]
    assert data["index"] is None  # no index in this state dir


def test_render_is_self_contained_with_every_chart(history: Path):
    html = render(collect(history))
    ids = re.findall(r'<figure id="chart-(\w+)">', html)
    assert ids == ["search", "mrr", "accuracy", "loss", "decisions", "index", "throughput"]
    assert html.count('<svg class="chart"') == 7 and "no data yet" not in html
    assert 'data-series="doc after"' in html and 'data-series="code"' in html
    assert 'data-series="before"' in html and 'data-series="after"' in html
    assert html.count('class="series" data-series="#') == 4  # one loss line per run with epochs
    bars = re.findall(r'<rect class="bar"[^>]*fill="(#\w+)"', html)
    assert bars == ["#54a24b", "#e45756", "#54a24b", "#9e9e9e", "#54a24b"]  # promoted, rejected, failed
    assert re.search(r"<td>v4 ★</td>.*?<td>0\.610</td>", html)
    assert "rejected: does not beat the active model" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "<script" not in html and "<link" not in html


def test_empty_state_renders_placeholders(tmp_path: Path):
    html = render(collect(tmp_path))
    assert html.count("no data yet") == 7 and "<td>base</td>" in html


def test_dashboard_cli_writes_the_file(history: Path, tmp_path: Path, capsys):
    out = tmp_path / "report" / "dash.html"
    assert cli_main(["dashboard", "--repo", str(history), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(out)}
    assert out.read_text(encoding="utf-8").count('<svg class="chart"') == 7
    assert cli_main(["dashboard", "--repo", str(history)]) == 0
    assert (history / ".codekin/dashboard.html").is_file()
    assert "Dashboard written to" in capsys.readouterr().out


def test_served_on_localhost_only(history: Path):
    server = DashboardServer(history).start()
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        with urllib.request.urlopen(server.url, timeout=10) as answer:
            assert answer.headers["Content-Type"].startswith("text/html")
            assert answer.read().decode().count('<svg class="chart"') == 7
        with urllib.request.urlopen(server.url + "data.json", timeout=10) as answer:
            assert json.loads(answer.read())["active"] == "v4"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url + "etc/passwd", timeout=10)
        assert server._httpd.server_address[0] == "127.0.0.1"
    finally:
        server.stop()


def test_answers_only_loopback_host_names_with_the_port(history: Path):
    """DNS rebinding: a page of another site whose name resolves to 127.0.0.1 sends its own Host."""
    server = DashboardServer(history).start()
    try:
        def status(host: str) -> int:
            return get_with_host(server.port, "/data.json", host, timeout=10)[0]

        port = server.port
        for good in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
            assert status(good) == 200, good
        for bad in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}",
                    f"localhost.evil.example:{port}", ""):
            assert status(bad) == 421, bad
    finally:
        server.stop()


def test_a_damaged_index_state_is_said_on_the_served_page(history: Path):
    """A state.json that cannot be read is a message on the page, not an exception in the server."""
    (history / ".codekin/state.json").write_bytes(b"[]")
    server = DashboardServer(history).start()
    try:
        status, body = get_with_host(server.port, "/", f"127.0.0.1:{server.port}")
        assert status == 200
        page = body.decode("utf-8")
        problem = re.search(r'<p class="problem" id="index-problem">([^<]*)</p>', page)
        assert problem and "state.json is damaged: a JSON list" in problem[1] and "run `codekin index`" in problem[1]
        assert page.count('<svg class="chart"') == 7  # the rest of the page is there
        status, body = get_with_host(server.port, "/data.json", f"localhost:{server.port}")
        assert status == 200 and "state.json is damaged" in json.loads(body)["index_problem"]
    finally:
        server.stop()


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) into rows of pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0
    channels = 3 if color == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line) if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        previous = line
    return width, height, rows


def color_pixels(rows: list[bytes], rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    import numpy as np

    pixels = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), -1, 3).astype(np.int16)
    return int((np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=2).sum())


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="headless Chromium is not installed: apt-get install -y chromium (Debian)")
def test_charts_render_in_headless_chromium(history: Path, tmp_path: Path):
    page = tmp_path / "dashboard.html"
    page.write_text(render(collect(history)), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1240,1200",
                    f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=120)
    width, height, rows = read_png(shot)
    assert (width, height) == (1240, 1200)
    series = {"blue (before / loss)": (0x4C, 0x78, 0xA8), "orange (after)": (0xF5, 0x85, 0x18),
              "green (promoted)": (0x54, 0xA2, 0x4B), "red (rejected)": (0xE4, 0x57, 0x56)}
    drawn = {name: color_pixels(rows, rgb) for name, rgb in series.items()}
    assert all(count > 150 for count in drawn.values()), drawn

    empty = tmp_path / "empty.html"
    empty.write_text(render(collect(tmp_path / "nothing")), encoding="utf-8")
    blank = tmp_path / "blank.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1240,1200",
                    f"--screenshot={blank}", empty.as_uri()], check=True, capture_output=True, timeout=120)
    _, _, rows = read_png(blank)
    assert color_pixels(rows, series["orange (after)"]) < 20  # the check tells drawn charts from empty ones


def test_axes_stay_readable():
    from codekin.dashboard.svg import Series, line_chart, tick_labels

    labels = tick_labels([0.5 + 0.0025 * i for i in range(5)])
    assert len(set(labels)) == 5 and labels[0] == "0.500"  # no repeated tick labels on a narrow range
    flat_loss = line_chart("loss", ["epoch 1"], [Series("#1", [(0, 0.12)])], "loss", y_min=0)
    ticks = re.findall(r'text-anchor="end" font-size="11" fill="#555">([^<]+)<', flat_loss)
    assert ticks[0] == "0" and not any(t.startswith("-") for t in ticks)

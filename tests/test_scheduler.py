"""The nightly schedule with an injected clock: when it fires, catch-up, skips, single flight.
Real git repositories and a real metrics.db; no model is loaded."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from codekin.config import ScheduleConfig, load_config
from codekin.errors import ConfigError
from codekin.jobs.loop import LearningLoop, describe_last_training, training_status
from codekin.jobs.retrain import RetrainOptions
from codekin.jobs.scheduler import (
    NightlyScheduler,
    git_head,
    read_jobs_state,
    should_train,
    write_jobs_state,
)
from codekin.metrics import MetricsStore
from codekin.training.pipeline import TrainLock
from tests.conftest import git

UTC = dt.UTC


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def scheduler(root: Path, clock: FakeClock, fired: list[str], **config: object) -> NightlyScheduler:
    return NightlyScheduler(root, ScheduleConfig(**config), fired.append, clock=clock)


def record_success(root: Path, finished: dt.datetime) -> None:
    with MetricsStore(root) as metrics:
        run = metrics.start_run(base_version="base", new_version="v1")
        metrics.finish_run(run, "completed", promoted=1, reason="better")
        metrics.db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (finished.timestamp(), run))


def test_fires_daily_at_two_utc(tmp_path: Path):
    clock = FakeClock(dt.datetime(2026, 3, 10, 14, 30, tzinfo=UTC))
    fired: list[str] = []
    nightly = scheduler(tmp_path, clock, fired)
    assert nightly.next_run == dt.datetime(2026, 3, 11, 2, 0, tzinfo=UTC)
    nightly.tick()  # first start: the schedule is armed, nothing is owed
    clock.now = dt.datetime(2026, 3, 11, 1, 59, 59, tzinfo=UTC)
    nightly.tick()
    assert fired == []
    clock.advance(seconds=1)
    nightly.tick()
    nightly.tick()
    assert fired == ["nightly"]
    assert nightly.next_run == dt.datetime(2026, 3, 12, 2, 0, tzinfo=UTC)
    clock.advance(days=1, minutes=5)  # late (the machine was busy): still fires once
    nightly.tick()
    assert fired == ["nightly", "nightly"]
    assert "nightly training at 02:00 UTC, next 2026-03-13 02:00 UTC" == nightly.describe()


def test_time_and_timezone_are_configurable(tmp_path: Path):
    fired: list[str] = []
    winter = FakeClock(dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    berlin = scheduler(tmp_path, winter, fired, time="03:30", timezone="Europe/Berlin")
    assert berlin.next_run == dt.datetime(2026, 1, 16, 2, 30, tzinfo=UTC)  # CET = UTC+1
    summer = FakeClock(dt.datetime(2026, 7, 15, 12, 0, tzinfo=UTC))
    assert scheduler(tmp_path, summer, fired, time="03:30", timezone="Europe/Berlin").next_run == \
        dt.datetime(2026, 7, 16, 1, 30, tzinfo=UTC)  # CEST = UTC+2
    off = scheduler(tmp_path, winter, fired, enabled=False)
    winter.advance(days=3)
    off.tick()
    assert off.next_run is None and fired == [] and "off" in off.describe()


def test_schedule_config_is_checked(tmp_path: Path):
    (tmp_path / ".codekin").mkdir()
    for bad, message in (('time = "2am"', "schedule.time must be HH:MM"),
                         ('timezone = "Mars/Olympus"', "not a known time zone"),
                         ("triplets = 0", r"schedule.triplets must be in \[1, ")):
        (tmp_path / ".codekin/config.toml").write_text(f"[schedule]\n{bad}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path)
    (tmp_path / ".codekin/config.toml").write_text('[schedule]\ntime = "23:15"\ntimezone = "Asia/Tokyo"\n')
    assert (load_config(tmp_path).schedule.time, load_config(tmp_path).schedule.timezone) == ("23:15", "Asia/Tokyo")


def test_missed_run_is_caught_up_at_start(tmp_path: Path):
    clock = FakeClock(dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    record_success(tmp_path, clock.now - dt.timedelta(hours=30))  # the machine slept through 02:00
    fired: list[str] = []
    scheduler(tmp_path, clock, fired).tick()
    assert fired == ["catch-up"]

    recent: list[str] = []
    record_success(tmp_path, clock.now - dt.timedelta(hours=3))
    nightly = scheduler(tmp_path, clock, recent)
    nightly.tick()
    nightly.tick()
    assert recent == []


def test_catch_up_before_any_training_counts_from_the_first_start(tmp_path: Path):
    clock = FakeClock(dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    fired: list[str] = []
    scheduler(tmp_path, clock, fired).tick()
    assert fired == [] and read_jobs_state(tmp_path)["armed_at"] == clock.now.timestamp()
    clock.advance(hours=25)  # the server was closed every night since
    scheduler(tmp_path, clock, fired).tick()
    assert fired == ["catch-up"]


def test_skips_when_no_commit_since_the_last_training(repo_factory):
    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n"})
    assert should_train(root) == (True, "first training")
    write_jobs_state(root, trained_head=git_head(root))
    due, why = should_train(root)
    assert not due and why.startswith("no commit since the last training")
    assert should_train(root, force=True) == (True, "forced")
    (root / "lib/b.ex").write_text("defmodule B do\nend\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "b")
    due, why = should_train(root)
    assert due and why.startswith("new commits since the last training")


def test_skip_without_a_recorded_head_uses_commit_time(repo_factory):
    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n"})
    record_success(root, dt.datetime.now(UTC) + dt.timedelta(minutes=1))  # trained by `codekin train`
    assert should_train(root) == (False, "no commit since the last training")


def test_nightly_run_is_skipped_and_logged(repo_factory):
    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n"})
    write_jobs_state(root, trained_head=git_head(root))
    loop = LearningLoop(root, load_config(root))
    loop._scheduled("nightly")
    last = read_jobs_state(root)["last_run"]
    assert (last["trigger"], last["outcome"]) == ("nightly", "skipped")
    assert last["message"].startswith("no commit since the last training")
    assert describe_last_training(root)["lastAttempt"]["outcome"] == "skipped"


def test_never_two_trainings_at_once(repo_factory):
    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n"})
    config = load_config(root)
    loop = LearningLoop(root, config)
    with TrainLock(root):  # `codekin train` in a terminal
        answer = loop.retrain(RetrainOptions(epochs=1))
        assert answer["started"] is False
        assert answer["message"].startswith(f"training already running (pid {os.getpid()} since ")
        loop._scheduled("nightly")  # a commit is new: it would train, but the lock is taken
        last = read_jobs_state(root)["last_run"]
        assert last["outcome"] == "skipped" and "training already running" in last["message"]
    assert not loop._run_lock.locked()

    with loop._run_lock:  # a run of this server is in progress
        loop.running = "on demand since 01:59:00"
        assert loop.retrain(RetrainOptions()) == {
            "started": False, "message": "training already running (on demand since 01:59:00)"}
        loop._scheduled("nightly")
        assert read_jobs_state(root)["last_run"]["message"] == \
            "training already running (on demand since 01:59:00)"


def test_a_loop_that_is_not_served_reports_status_and_yields_to_a_running_training(repo_factory):
    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n"})
    config = load_config(root)
    status = training_status(root, None)
    assert status == {"lastTraining": None, "nextTraining": None, "dashboard": None}
    loop = LearningLoop(root, config)  # what a language server without a model retrains with
    with TrainLock(root):
        answer = loop.retrain(RetrainOptions(epochs=1, learning_rate=1e-4, batch_size=8))
    assert answer["started"] is False and "training already running" in answer["message"]


def test_scheduler_thread_ticks_and_stops(tmp_path: Path):
    ticks: list[float] = []
    nightly = NightlyScheduler(tmp_path, ScheduleConfig(), lambda trigger: None, tick_s=0.01,
                               on_tick=lambda: ticks.append(time.monotonic()))
    nightly.start()
    deadline = time.monotonic() + 5
    while len(ticks) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    nightly.stop(timeout=2)
    assert len(ticks) >= 3 and not nightly._thread.is_alive()

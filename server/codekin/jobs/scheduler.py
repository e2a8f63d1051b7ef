"""The nightly training schedule: the `schedule` library driven by an injectable clock.

`NightlyScheduler(root, config.schedule, run)` calls `run("nightly")` every day at
`schedule.time` in `schedule.timezone` (02:00 UTC by default) from its own thread, and
`run("catch-up")` once at start when the last successful training is more than 24 h old
(a run missed while the machine slept or the server was closed). Whether a run then
trains (a commit since the last training, no other training running) is `run`'s call;
`should_train` is the rule it uses.

The clock returns an aware datetime; tests pass a fake one and call `tick()` themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import schedule

from codekin.atomic import write_json_atomic
from codekin.config import ScheduleConfig
from codekin.git import commit_time
from codekin.git import head as git_head
from codekin.state import JOBS_FILE, METRICS_DB, state_path

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
CATCH_UP_AFTER = dt.timedelta(hours=24)
TICK_S = float(os.environ.get("CODEKIN_JOBS_TICK_S", "20"))  # how often the loop looks at the clock and registry


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DailyJob(schedule.Job):
    """A `schedule` job whose time comes from `clock` and whose day follows `tz` (zoneinfo)."""

    def __init__(self, scheduler: schedule.Scheduler, clock: Clock, tz: ZoneInfo) -> None:
        super().__init__(1, scheduler)
        self.clock = clock
        self.tz = tz

    @property
    def should_run(self) -> bool:
        return self.next_run is not None and self.clock() >= self.next_run

    def _schedule_next_run(self) -> None:
        local = self.clock().astimezone(self.tz)
        at = self.at_time if self.at_time is not None else dt.time(0, 0)
        candidate = dt.datetime.combine(local.date(), at, tzinfo=self.tz)
        if candidate <= local:
            candidate = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=self.tz)
        self.next_run = candidate.astimezone(dt.UTC)


# -- persistent job state (.codekin/jobs.json) ------------------------------------------
def jobs_path(root: Path) -> Path:
    return state_path(root, JOBS_FILE)


def read_jobs_state(root: Path) -> dict[str, Any]:
    try:
        return json.loads(jobs_path(root).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def write_jobs_state(root: Path, **values: Any) -> dict[str, Any]:
    state = {**read_jobs_state(root), **values}
    path = jobs_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, state, sort_keys=False, durable=False)
    return state


def last_training(root: Path) -> dict[str, Any] | None:
    """The newest training run in metrics.db (any status), or None."""
    from codekin.metrics import MetricsStore

    if not state_path(root, METRICS_DB).is_file():
        return None
    with MetricsStore(root) as metrics:
        runs = metrics.runs(limit=1)
    return runs[0] if runs else None


def last_success(root: Path) -> float | None:
    """When the newest completed training run finished (epoch seconds), or None."""
    from codekin.metrics import MetricsStore

    if not state_path(root, METRICS_DB).is_file():
        return None
    with MetricsStore(root) as metrics:
        row = metrics.db.execute("SELECT MAX(finished_at) FROM runs WHERE status = 'completed'").fetchone()
    return float(row[0]) if row and row[0] is not None else None


def should_train(root: Path, force: bool = False) -> tuple[bool, str]:
    """(True, why) when a commit landed since the last training (or none ran yet), or when forced."""
    if force:
        return True, "forced"
    head = git_head(root)
    trained_head = read_jobs_state(root).get("trained_head")
    if trained_head:
        if head == trained_head:
            return False, f"no commit since the last training (HEAD {head[:10]})"
        return True, f"new commits since the last training ({trained_head[:10]} -> {head[:10]})"
    finished = last_success(root)
    committed = commit_time(root)
    if finished is not None and committed is not None and committed <= finished:
        return False, "no commit since the last training"
    return True, "first training" if finished is None else "new commits since the last training"


class NightlyScheduler:
    def __init__(self, root: Path, config: ScheduleConfig, run: Callable[[str], Any], clock: Clock = utc_now,
                 tick_s: float = TICK_S, on_tick: Callable[[], None] | None = None) -> None:
        self.root = Path(root)
        self.config = config
        self.run = run
        self.clock = clock
        self.tick_s = tick_s
        self.on_tick = on_tick
        self._scheduler = schedule.Scheduler()
        self._job: DailyJob | None = None
        self._caught_up = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if config.enabled:
            tz = ZoneInfo(config.timezone)
            self._job = DailyJob(self._scheduler, clock, tz).day.at(config.time).do(self._fire, "nightly")

    @property
    def next_run(self) -> dt.datetime | None:
        return self._job.next_run if self._job is not None else None

    def describe(self) -> str:
        if self._job is None:
            return "nightly training is off ([schedule] enabled = false)"
        return f"nightly training at {self.config.time} {self.config.timezone}, next {self.next_run:%Y-%m-%d %H:%M} UTC"

    def _fire(self, trigger: str) -> None:
        try:
            self.run(trigger)
        except Exception:  # a failed night must not end the schedule; logged with its traceback
            log.exception("scheduled %s training failed", trigger)

    def catch_up_due(self) -> tuple[bool, str]:
        """A run is owed when the last success (or, before any, the first start) is > 24 h old."""
        now = self.clock()
        state = read_jobs_state(self.root)
        armed = state.get("armed_at")
        if armed is None:
            write_jobs_state(self.root, armed_at=now.timestamp())
        finished = last_success(self.root)
        if finished is not None:
            reference = finished
        elif armed is not None:
            reference = float(armed)
        else:
            return False, "first start: the schedule is armed"
        age = now - dt.datetime.fromtimestamp(reference, dt.UTC)
        if age > CATCH_UP_AFTER:
            what = "last successful training" if finished is not None else "schedule armed"
            return True, f"{what} {age.total_seconds() / 3600:.0f} h ago"
        return False, "the last training is recent"

    def tick(self) -> None:
        """One step of the loop: the catch-up check (first tick only), due jobs, then on_tick."""
        if self._job is not None and not self._caught_up:
            self._caught_up = True
            due, why = self.catch_up_due()
            if due:
                log.info("catching up a missed nightly training: %s", why)
                self._fire("catch-up")
        self._scheduler.run_pending()
        if self.on_tick is not None:
            self.on_tick()

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="codekin-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        log.info("%s", self.describe())
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep scheduling; logged with its traceback
                log.exception("scheduler tick failed")
            self._stop.wait(self.tick_s)

    def stop(self, timeout: float = 0.0) -> None:
        self._stop.set()
        if self._thread is not None and timeout:
            self._thread.join(timeout)

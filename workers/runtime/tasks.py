"""Thin Celery tasks, one per queue: each validates, then hands its pipeline to the job runner."""

from __future__ import annotations

from typing import Any

from celery import Task

from shared.jobs import TaskName
from workers.pipelines.entry import AUDIO_PIPELINE, TEXT_PIPELINE, VISION_PIPELINE
from workers.runtime.celery_app import app
from workers.runtime.job_runner import run_job
from workers.runtime.process import get_context


class JobTask(Task):  # type: ignore[misc]  # celery ships no type hints
    """Our tasks' common settings. `max_retries = None` is Celery's documented "retry forever": Celery's own
    default cap (3) counted our deferrals too and ended jobs with MaxRetriesExceededError, bypassing the apology,
    the dead letter and the conversation's release. The retry budget is the job runner's (retry_policy.py).
    `Request` observes, in the parent process, the exits a job's own code cannot see (runtime/requests.py)."""

    max_retries = None
    Request = "workers.runtime.requests:JobRequest"


@app.task(name=TaskName.TEXT.value, bind=True, base=JobTask)
def handle_text_message(self: Task, payload: str | dict[str, Any]) -> None:
    run_job(self, get_context(), payload, TEXT_PIPELINE)


@app.task(name=TaskName.AUDIO.value, bind=True, base=JobTask)
def handle_audio_message(self: Task, payload: str | dict[str, Any]) -> None:
    run_job(self, get_context(), payload, AUDIO_PIPELINE)


@app.task(name=TaskName.VISION.value, bind=True, base=JobTask)
def handle_vision_message(self: Task, payload: str | dict[str, Any]) -> None:
    run_job(self, get_context(), payload, VISION_PIPELINE)

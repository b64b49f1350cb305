"""Thin Celery tasks, one per queue: each validates, then hands its pipeline to the job runner."""

from __future__ import annotations

from typing import Any

from celery import Task

from shared.jobs import TaskName
from workers.pipelines.entry import AUDIO_PIPELINE, TEXT_PIPELINE, VISION_PIPELINE
from workers.runtime.celery_app import app
from workers.runtime.job_runner import run_job
from workers.runtime.process import get_context


@app.task(name=TaskName.TEXT.value, bind=True)
def handle_text_message(self: Task, payload: str | dict[str, Any]) -> None:
    run_job(self, get_context(), payload, TEXT_PIPELINE)


@app.task(name=TaskName.AUDIO.value, bind=True)
def handle_audio_message(self: Task, payload: str | dict[str, Any]) -> None:
    run_job(self, get_context(), payload, AUDIO_PIPELINE)


@app.task(name=TaskName.VISION.value, bind=True)
def handle_vision_message(self: Task, payload: str | dict[str, Any]) -> None:
    run_job(self, get_context(), payload, VISION_PIPELINE)

"""Thin Celery tasks, one per queue: each validates, then hands its pipeline to the job runner."""

from __future__ import annotations

from typing import Any

from celery import Task

from shared.jobs import TaskName
from workers.celery_app import app
from workers.context import get_context
from workers.job_runner import run_job
from workers.pipelines.audio import handle_audio_queue
from workers.pipelines.text import handle_text_queue
from workers.pipelines.vision import handle_image


@app.task(name=TaskName.TEXT.value, bind=True)
def handle_text_message(self: Task, payload: dict[str, Any]) -> None:
    run_job(self, get_context(), payload, handle_text_queue)


@app.task(name=TaskName.AUDIO.value, bind=True)
def handle_audio_message(self: Task, payload: dict[str, Any]) -> None:
    run_job(self, get_context(), payload, handle_audio_queue)


@app.task(name=TaskName.VISION.value, bind=True)
def handle_vision_message(self: Task, payload: dict[str, Any]) -> None:
    run_job(self, get_context(), payload, handle_image)

"""The Celery app, and nothing else. Broker and results on Redis.

Settings that matter for long training tasks (see docs/operations.md):

* ``acks_late`` + ``prefetch_multiplier=1``: a task is acknowledged after it finishes, so a
  killed worker's task is redelivered, and a worker holds one task at a time.
* ``visibility_timeout`` longer than the longest training: Redis redelivers unacknowledged
  tasks after it, so a shorter value would run a long training twice (celery#5935).
* Training workers run the ``solo`` pool (``dpgcn worker`` picks it for the training queue):
  CUDA cannot be initialised in forked pool children (celery#3402).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from dpgcn.services import redis_url
from dpgcn.settings import get_settings

GRAPH_QUEUE = "graph"
TRAINING_QUEUE = "training"
VISIBILITY_TIMEOUT_S = 12 * 3600
TRAIN_TIME_LIMIT_S = 6 * 3600


def create_app() -> Celery:
    """The app; Redis' address is resolved when Celery first needs it, so importing the
    workers needs no running services."""
    settings = get_settings()
    celery = Celery(
        "dpgcn",
        include=[
            "workers.pipeline",
            "workers.segment_tasks",
            "workers.recovery",
            "workers.online",
            "workers.privacy",
            "workers.refresh",
        ],
    )

    @celery.on_configure.connect(weak=False)
    def _redis(sender: Celery, **_: object) -> None:
        url = redis_url(get_settings())
        sender.conf.broker_url = url
        sender.conf.result_backend = url

    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_extended=True,
        result_expires=7 * 24 * 3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_default_queue=GRAPH_QUEUE,
        task_routes={
            "workers.pipeline.train_model": {"queue": TRAINING_QUEUE},
            "workers.pipeline.*": {"queue": GRAPH_QUEUE},
            "workers.online.*": {"queue": GRAPH_QUEUE},
            "workers.segment_tasks.*": {"queue": GRAPH_QUEUE},
            "workers.privacy.*": {"queue": GRAPH_QUEUE},
            "workers.refresh.*": {"queue": GRAPH_QUEUE},
        },
        task_time_limit=TRAIN_TIME_LIMIT_S,
        beat_schedule=_schedule(
            settings.retrain_every_s,
            settings.policy_update_every_s,
            settings.privacy_scrub_every_s,
            settings.refresh_every_s,
        ),
        worker_hijack_root_logger=False,
    )
    return celery


def _schedule(
    retrain_every_s: float,
    policy_update_every_s: float,
    privacy_scrub_every_s: float = 0.0,
    refresh_every_s: float = 0.0,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "retrain": {"task": "workers.pipeline.start_pipeline", "schedule": retrain_every_s},
    }
    if policy_update_every_s > 0:
        schedule["policy-update"] = {
            "task": "workers.online.update_policy",
            "schedule": policy_update_every_s,
            # a late round is useless once the next one is due
            "options": {"expires": policy_update_every_s},
        }
    if privacy_scrub_every_s > 0:
        schedule["privacy-scrub"] = {
            "task": "workers.privacy.scrub_erased_artifacts",
            "schedule": privacy_scrub_every_s,
            "options": {"expires": privacy_scrub_every_s},
        }
    if refresh_every_s > 0:
        # vectors of the active version for nodes created after its training (docs/inductive.md)
        schedule["refresh-vectors"] = {
            "task": "workers.refresh.refresh_vectors",
            "schedule": refresh_every_s,
            "kwargs": {"wait": False},  # the next round comes soon
            "options": {"expires": refresh_every_s},
        }
    return schedule


app = create_app()

"""Model versions and pipeline runs (read-only here; activation is an admin action)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import DriverDep, SettingsDep
from api.errors import ApiError
from api.schemas import Job, ModelVersion
from graphstore import writeback

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=list[ModelVersion])
def list_models(driver: DriverDep, settings: SettingsDep) -> list[ModelVersion]:
    """Every model version, newest first, with status, slot and metrics."""
    return [
        ModelVersion.from_record(m) for m in writeback.list_models(driver, settings.neo4j.database)
    ]


@router.get("/jobs", response_model=list[Job])
def list_jobs() -> list[Job]:
    """Recent pipeline runs with state, step, timings and metrics."""
    from workers import runs

    return [Job.from_record(r) for r in runs.list_runs(50)]


@router.get("/jobs/{run_id}", response_model=Job)
def get_job(
    run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$", examples=["v20261126-1"])],
) -> Job:
    """One pipeline run: state, current step, training progress, timings, metrics."""
    from workers import runs

    record: dict[str, Any] | None = runs.get(run_id)
    if record is None:
        raise ApiError(404, f"unknown job {run_id!r}")
    return Job.from_record(record)

"""Model versions and pipeline runs; activation (rollback) is an admin action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import DriverDep, RecommenderDep, RunsDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import Job, ModelVersion
from api.security import AdminKey, ReadKey
from graphstore import writeback
from graphstore.errors import VersionError
from graphstore.ids import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["models"], responses=responses(401, 403, 503))

#: Model versions in paths follow the id rule (never ``.`` or ``..``).
VERSION_PATTERN = ID_PATTERN


@router.get("/models", response_model=list[ModelVersion], dependencies=[ReadKey])
def list_models(driver: DriverDep, settings: SettingsDep) -> list[ModelVersion]:
    """Every model version, newest first, with status, slot and metrics."""
    return [
        ModelVersion.from_record(m) for m in writeback.list_models(driver, settings.neo4j.database)
    ]


@router.post(
    "/models/{version}/activate",
    response_model=ModelVersion,
    dependencies=[AdminKey],
    responses=responses(404, 409, 422),
)
def activate_model(
    version: Annotated[str, Path(pattern=VERSION_PATTERN, examples=["v20261126-233000-1a2b3c"])],
    driver: DriverDep,
    recommender: RecommenderDep,
    settings: SettingsDep,
) -> ModelVersion:
    """Make a complete version the active one (e.g. roll back to the previous version), in one
    transaction. 404 for an unknown version; 409 when it is not complete (still writing, or
    superseded: its slot was overwritten). Activating the active version changes nothing."""
    db = settings.neo4j.database
    try:
        writeback.activate_version(driver, version, db)
    except VersionError as e:
        record = writeback.get_model(driver, version, db)
        if record is None:
            raise ApiError(404, f"unknown model version {version!r}") from e
        raise ApiError(
            409, f"model version {version!r} is {record.get('status')!r}, not complete"
        ) from e
    recommender.invalidate()
    record = writeback.get_model(driver, version, db)
    assert record is not None
    return ModelVersion.from_record(record)


@router.get("/jobs", response_model=list[Job], dependencies=[ReadKey])
def list_jobs(runs: RunsDep) -> list[Job]:
    """Recent pipeline runs with state, step, timings and metrics."""
    return [Job.from_record(r) for r in runs.list_runs(50)]


@router.get(
    "/jobs/{run_id}", response_model=Job, dependencies=[ReadKey], responses=responses(404, 422)
)
def get_job(
    run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$", examples=["v20261126-1"])],
    runs: RunsDep,
) -> Job:
    """One pipeline run: state, current step, training progress, timings, metrics."""
    record: dict[str, Any] | None = runs.get(run_id)
    if record is None:
        raise ApiError(404, f"unknown job {run_id!r}")
    return Job.from_record(record)

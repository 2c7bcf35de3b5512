"""Client jobs."""

from __future__ import annotations

from app.services import client_import
from jobs import app_job


@app_job
def run_client_import(import_id: int) -> None:
    """Imports a CSV file saved by `client_import.start_import` (resumes if run again)."""
    client_import.run_import(import_id)

"""Property-based fuzzing of the API against its own OpenAPI schema: no request may cause a 5xx.

schemathesis generates requests for every operation (valid and edge-case bodies, parameters and
uploads) with an admin key, so the handlers behind the auth layer are reached.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")

from visionlake.lake import Lake  # noqa: E402
from visionlake.service.app import create_app  # noqa: E402
from visionlake.service.auth import create_key  # noqa: E402
from visionlake.service.limits import ServiceLimits  # noqa: E402


def _build():
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="vl-fuzz-"))
    lake = Lake(root / "lake")
    lake.create_collection("fz", "faces")
    lake.create_collection("fz-fashion", "fashion")
    key = create_key(lake, "admin", name="fuzzer")["key"]
    # job_workers=0 and no ingest roots: fuzzed job requests stay cheap and inside the temp lake
    app = create_app(lake=lake, limits=ServiceLimits(rate_per_s=100_000, burst=100_000, request_timeout_s=20),
                     job_workers=0)
    return app, key


APP, KEY = _build()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    # deleting the fuzzer's own collections or keys would only make later cases trivial 404s
    if case.method == "DELETE" and case.path in ("/collections/{collection}", "/admin/keys/{key_id}"):
        pytest.skip("destructive on the fuzzing fixture")
    response = case.call(headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert "error" in response.json(), response.text[:300]  # every error is the JSON error shape

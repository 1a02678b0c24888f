"""Helpers shared by the service tests (imported by name: tests/ has no package)."""

from __future__ import annotations

import io
import time

from PIL import Image


def png_bytes(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_job(client, collection: str, job_id: int, key: str, timeout: float = 90.0) -> dict:
    """Poll a job until it reaches a final status."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = client.get(f"/collections/{collection}/jobs/{job_id}", headers=auth(key))
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {body}")

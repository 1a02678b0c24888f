"""Keep people's names out of the web server's logs.

The API never puts a name in a URL (erasure is by person id, or by name in a JSON body), but a
client may still send one (an old client, a typo, a probe of the API), and uvicorn's access log
writes every request line. This filter rewrites, before anything is written, every path segment
under ``/collections/<c>/people/`` that is not a number or a known action into ``<redacted>``, and
drops the query string of those paths. Installed by :func:`visionlake.service.app.create_app` and
again when the app starts, after uvicorn has configured its loggers.
"""

from __future__ import annotations

import logging
import re

#: ``/collections/<collection>/people/<segment>...`` (with an optional query string).
_PEOPLE = re.compile(r"^(?P<head>/collections/[^/?#]+/people)(?P<rest>/[^?#]*)?(?P<query>\?.*)?$", re.S)
#: Segments under ``/people/`` that are not personal data.
_ACTIONS = {"forget"}
REDACTED = "<redacted>"


def redact_path(path: str) -> str:
    """The path with any name-like segment under ``/people/`` replaced, and its query string dropped."""
    m = _PEOPLE.match(path)
    if m is None:
        return path
    parts = [p if p.isdigit() or p in _ACTIONS or not p else REDACTED for p in (m["rest"] or "").split("/")]
    return m["head"] + "/".join(parts) + ("?" + REDACTED if m["query"] else "")


class RedactPeoplePaths(logging.Filter):
    """Rewrites the path argument of uvicorn access records (client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    """Attach the filter to uvicorn's access logger (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactPeoplePaths) for f in logger.filters):
        logger.addFilter(RedactPeoplePaths())


__all__ = ["REDACTED", "RedactPeoplePaths", "install", "redact_path"]

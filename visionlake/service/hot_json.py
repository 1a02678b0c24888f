"""Already-serialised JSON answers for the hot routes (identify by embedding, fashion search).

FastAPI validates a route's returned dict against its ``response_model`` and then serialises the
model: on these two routes that step costs about as much Python as the query itself, for a dict
the route has just built from typed values. A route here builds the answer's exact shape (the
model's fields, in the model's order, defaults filled in, values converted as the model converts
them) and serialises it with pydantic's own JSON writer, so the bytes are those the generic path
writes; it still *declares* its ``response_model``, so /docs and the OpenAPI schema are unchanged.
``tests/service/test_hot_json.py`` checks the answers against the model's serialisation.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from starlette.responses import Response


def json_response(content: Any) -> Response:
    """``content`` (plain dicts, lists, str, int, float, bool, None) as the JSON answer FastAPI's
    response-model path sends: the same writer (pydantic-core), the same media type, status 200."""
    return Response(content=to_json(content), media_type="application/json")

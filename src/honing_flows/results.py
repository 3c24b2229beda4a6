"""Where the stages' reusable results are kept: a Prefect result serializer that stores them
with skops and loads them with honing's reviewed types only (never unpickled)."""

from __future__ import annotations

import base64
from typing import Any, Literal

from prefect.serializers import Serializer

from honing import artifacts


class SkopsResults(Serializer):
    """Prefect result serializer: skops bytes (base64, as Prefect stores text), loaded with
    honing's reviewed types only."""

    type: Literal["honing-skops"] = "honing-skops"

    def dumps(self, obj: Any) -> bytes:
        return base64.b64encode(artifacts.skops_bytes(obj))

    def loads(self, blob: bytes) -> Any:
        return artifacts.load_result(base64.b64decode(blob))

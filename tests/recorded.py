"""The recorded provider exchanges in ../shared/fixtures, read in place (never copied)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("LLMTAP_FIXTURES", REPO.parent / "shared" / "fixtures"))


@dataclass(frozen=True)
class Exchange:
    """One recorded exchange: ``<shape>/<case>/`` with meta.json and bodies."""

    path: Path

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def shape(self) -> str:
        return self.path.parent.name

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.path / "meta.json").read_text())

    @property
    def response(self) -> bytes:
        return (self.path / "response.bin").read_bytes()

    @property
    def response_gz(self) -> bytes | None:
        p = self.path / "response.gz.bin"
        return p.read_bytes() if p.exists() else None

    @property
    def request(self) -> bytes | None:
        p = self.path / "request.json"
        return p.read_bytes() if p.exists() else None

    def header(self, name: str) -> str | None:
        for k, v in self.meta.get("response_headers", {}).items():
            if k.lower() == name.lower():
                return v
        return None


def all_exchanges() -> list[Exchange]:
    if not FIXTURES.is_dir():
        raise RuntimeError(
            f"recorded exchanges not found at {FIXTURES}; "
            "set LLMTAP_FIXTURES to the fixtures folder"
        )
    return [Exchange(p.parent) for p in sorted(FIXTURES.glob("*/*/meta.json"))]


EXCHANGES = all_exchanges()

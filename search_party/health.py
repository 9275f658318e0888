"""What an operator (or the landing page) needs to know: are the models and the store usable."""

from __future__ import annotations

from dataclasses import dataclass

from embeddings import registry
from search_party.config import Settings


@dataclass(frozen=True)
class Health:
    ok: bool
    models: dict[str, bool]
    problems: list[str]


def check(settings: Settings) -> Health:
    rows = registry.status(settings.vision_runtime())
    problems = [r.problem for r in rows if r.problem]
    return Health(ok=not problems, models={r.name: r.verified for r in rows}, problems=problems)

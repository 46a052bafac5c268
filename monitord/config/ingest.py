"""Config of the event ingest endpoint (`ingest:`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from monitord.config.base import (
    Frozen,
)
from monitord.config.types import Name, Secret


def _source_name(value: str) -> str:
    # Recorded as `ingest:<name>` in events.source, a String(30) column.
    if len(value) > 23:
        raise ValueError(f"source name {value!r} is longer than 23 characters")
    return value


SourceName = Annotated[Name, AfterValidator(_source_name)]
_MIN_SECRET = 16  # shorter shared secrets are guessable by an online attacker


def _unique_names(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {kind} name {name!r}")
        seen.add(name)


class IngestToken(Frozen):
    """A sender authenticated by `Authorization: Bearer <token>`."""

    name: SourceName
    token: Secret

    @model_validator(mode="after")
    def _length(self) -> IngestToken:
        if len(self.token.get_secret_value()) < _MIN_SECRET:
            raise ValueError(f"token of {self.name!r} is shorter than {_MIN_SECRET} characters")
        return self


class IngestHmac(Frozen):
    """A sender that signs each request body with HMAC-SHA256 under `secret`."""

    name: SourceName
    secret: Secret

    @model_validator(mode="after")
    def _length(self) -> IngestHmac:
        if len(self.secret.get_secret_value()) < _MIN_SECRET:
            raise ValueError(f"secret of {self.name!r} is shorter than {_MIN_SECRET} characters")
        return self


class IngestConfig(Frozen):
    """`POST /api/v1/events` for external events (see docs/ingest.md); off unless enabled."""

    enabled: bool = False
    tokens: tuple[IngestToken, ...] = ()
    hmac: tuple[IngestHmac, ...] = ()
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: tuple[IngestToken, ...]) -> tuple[IngestToken, ...]:
        _unique_names("token", [t.name for t in value])
        owners: dict[str, str] = {}
        for t in value:
            other = owners.setdefault(t.token.get_secret_value(), t.name)
            if other != t.name:  # the token decides the source name: it must be unambiguous
                raise ValueError(f"tokens {other!r} and {t.name!r} have the same value")
        return value

    @field_validator("hmac")
    @classmethod
    def _hmac(cls, value: tuple[IngestHmac, ...]) -> tuple[IngestHmac, ...]:
        _unique_names("hmac", [h.name for h in value])
        return value

    @model_validator(mode="after")
    def _credentials(self) -> IngestConfig:
        if self.enabled and not (self.tokens or self.hmac):
            raise ValueError("ingest is enabled but has no tokens and no hmac secrets")
        return self

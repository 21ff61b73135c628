"""One registration object per vendor dialect: its name, settings, routes and push format.

Every dialect package exposes ``DIALECT = Dialect(...)`` in its ``__init__.py`` and has the
same files: ``settings.py`` (the typed ``[name]`` section), ``auth.py``, ``envelope.py`` (the
error table), ``routes.py`` (``mount``), handler modules, ``render.py`` and ``push.py``. The
runtime validates every dialect's section at start, in every role, and passes the typed
result to ``mount`` and to the push-format factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from simgate.errors import ConfigError
from simgate.lines.base import Line
from simgate.push.base import PushFormat
from simgate.services.container import Services
from simgate.settings import Settings

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Dialect(Generic[S]):
    name: str  # also the settings section: ``[itnio]`` for "itnio"
    settings: type[S]
    mount: Callable[[FastAPI, Services, S], None]
    # Checks across sections (a line the dialect names must exist); raises ConfigError.
    check: Callable[[S, Settings], None] | None = None
    # The dialect's push format (push/base.py), built from its settings and the lines it
    # exposes; None for a dialect that pushes nothing.
    push: Callable[[S, Mapping[str, Line]], PushFormat] | None = None

    def validate(self, section: Mapping[str, object]) -> S:
        """The section as typed settings; a bad value is one ConfigError line naming the key."""
        try:
            return self.settings.model_validate(dict(section))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            key = f"{self.name}.{where}" if where else self.name
            raise ConfigError(f"invalid setting {key}: {first['msg']}") from None

    def load(self, settings: Settings) -> S:
        """Validate this dialect's section of ``settings`` (at start, in every role)."""
        section = getattr(settings, self.name, None)
        if not isinstance(section, dict):
            raise ConfigError(f"settings have no [{self.name}] section")
        typed = self.validate(section)
        if self.check is not None:
            self.check(typed, settings)
        return typed

    def _typed(self, settings: BaseModel) -> S:
        if not isinstance(settings, self.settings):
            raise TypeError(f"{self.name}: settings are {type(settings).__name__}")
        return settings

    def install(self, app: FastAPI, services: Services, settings: BaseModel) -> None:
        """Mount the routes with settings :meth:`load` returned."""
        self.mount(app, services, self._typed(settings))

    def push_format(self, settings: BaseModel, lines: Mapping[str, Line]) -> PushFormat | None:
        """The dialect's push format, with settings :meth:`load` returned (None: no pushes)."""
        return None if self.push is None else self.push(self._typed(settings), lines)

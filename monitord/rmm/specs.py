"""CheckSpecs from the `rmm:` section's check definitions (uplinks, verification).

The params were validated when the config loaded (`config.rmm.check_rmm`); they
are parsed once per definition here and shared by every device they run on.
"""

from __future__ import annotations

from typing import Any

from checks.base import load_check_class
from monitord.config.model import CheckDefaults
from monitord.config.rmm import VerifyDef
from monitord.inventory import CheckSpec


class SpecBook:
    """Builds and caches the params of `VerifyDef`s (one parse per definition)."""

    def __init__(self, defaults: CheckDefaults) -> None:
        self.defaults = defaults
        self._params: dict[VerifyDef, tuple[str, Any]] = {}

    def spec(self, check: VerifyDef, device_id: str, *, prefix: str = "") -> CheckSpec:
        """The check `check` on `device_id`, named `<prefix><name>`. Raises KeyError,
        ImportError or ValidationError only for a config `resolve` refused."""
        cached = self._params.get(check)
        if cached is None:
            params = load_check_class(check.type).Params.model_validate(check.params)
            cached = (check.name or params.default_name(check.type), params)
            self._params[check] = cached
        name, params = cached
        name = f"{prefix}{name}"
        d = self.defaults
        return CheckSpec(
            id=f"{device_id}/{name}",
            device_id=device_id,
            name=name,
            kind=check.type,
            params=params,
            interval=d.interval,
            retry_interval=d.retry_interval,
            max_attempts=d.max_attempts,
            timeout=check.timeout or d.timeout,
        )

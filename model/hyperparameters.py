"""Typed, validated hyperparameters from SageMaker's all-string hyperparameters.json.

SageMaker hands every value over as a string (`"5"`, `"False"`), and newer SDKs
JSON-quote them once more (`"\\"5\\""`). `Spec.parse` turns such a mapping into
typed values, rejecting unknown names and invalid values with a message that
names them and says what is allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

# Keys SageMaker and its SDK add on their own: the framework estimators'
# sagemaker_* keys and hyperparameter tuning's _tuning_objective_metric.
_RESERVED_PREFIXES = ("sagemaker_", "_")


class HyperparameterError(ValueError):
    """One or more hyperparameters are unknown or invalid; the message lists them all."""


def unquote(value: Any) -> Any:
    """Undo the extra JSON quoting newer SageMaker SDKs apply: '"5"' -> '5'."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    number = float(value)
    if not number.is_integer():
        raise ValueError("expected an integer")
    return int(number)


def _parse_float(value: Any) -> float:
    number = float(value)
    # NaN compares false with every bound, so it would pass any range check and train a NaN model.
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def _parse_str(value: Any) -> str:
    return str(value).strip()


_PARSERS: dict[type, Callable[[Any], Any]] = {bool: parse_bool, int: _parse_int, float: _parse_float, str: _parse_str}


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, default, allowed range or choices, and what it does."""

    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None

    def parse(self, raw: Any) -> Any:
        try:
            value = _PARSERS[self.type](unquote(raw))
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}={raw!r} is not a valid {self.type.__name__}; {self.allowed()}") from None
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name}={raw!r} is not allowed; {self.allowed()}")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"{self.name}={raw!r} is out of range; {self.allowed()}")
        return value

    def allowed(self) -> str:
        if self.choices is not None:
            return "allowed: " + ", ".join(map(str, self.choices))
        if self.type is bool:
            return "allowed: true, false"
        number = (lambda x: f"{int(x):,}") if self.type is int else (lambda x: f"{x:g}")
        low = "-inf" if self.minimum is None else number(self.minimum)
        high = "inf" if self.maximum is None else number(self.maximum)
        return f"allowed: {self.type.__name__} in [{low}, {high}]"


class Spec:
    """The hyperparameters one algorithm takes."""

    def __init__(self, *params: Param):
        self.params = {param.name: param for param in params}

    def markdown(self) -> str:
        """The README's table of these hyperparameters."""
        rows = ["| name | default | allowed | what it does |", "|---|---|---|---|"]
        for param in self.params.values():
            default = str(param.default).lower() if param.type is bool else param.default
            default = "unset" if default is None else f"`{default}`"
            allowed = param.allowed().removeprefix("allowed: ")
            rows.append(f"| `{param.name}` | {default} | {allowed} | {param.help} |")
        return "\n".join(rows)

    def defaults(self) -> dict[str, Any]:
        return {name: param.default for name, param in self.params.items()}

    def parse(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Typed values for every parameter: those given in `raw`, defaults for the rest."""
        values = self.defaults()
        problems = []
        for name, value in raw.items():
            if name.startswith(_RESERVED_PREFIXES):
                continue
            if name not in self.params:
                problems.append(f"unknown hyperparameter {name!r} (known: {', '.join(sorted(self.params))})")
                continue
            try:
                values[name] = self.params[name].parse(value)
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise HyperparameterError("; ".join(problems))
        return values

"""The strategy registry: a dict and a decorator, as in timm.

A strategy family registers a frozen dataclass under a short name. Its fields are its typed
parameters, parsed from the command-line spelling (`partial3`, `lora:r=16,alpha=32,targets=q,v`)
and printed back identically by `spelling()`. Modifiers (`+amp`, `+cache`) are parsed here too,
so that one function turns any spelling into a validated `StrategySpec` before anything trains.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

from bench.errors import BenchError

ENTRY_POINT_GROUP = "serbench.strategies"


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    cls: type
    summary: str
    shorthand: str | None  # the int field spelled as a trailing number: partial3 -> k=3


_REGISTRY: dict[str, StrategyInfo] = {}
_plugins_loaded = False

T = TypeVar("T")


def register_strategy(
    name: str, *, summary: str, shorthand: str | None = None
) -> Callable[[type[T]], type[T]]:
    """Class decorator: register a strategy family under `name`. Registering a name twice is an error."""
    if not re.fullmatch(r"[a-z][a-z_]*", name):
        raise ValueError(f"strategy name {name!r} must be lowercase letters/underscores")

    def deco(cls: type[T]) -> type[T]:
        if name in _REGISTRY:
            raise ValueError(
                f"strategy {name!r} is registered twice ({_REGISTRY[name].cls.__module__} and {cls.__module__})"
            )
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"strategy {name!r} must be a dataclass")
        cls.family = name  # type: ignore[attr-defined]
        _REGISTRY[name] = StrategyInfo(name=name, cls=cls, summary=summary, shorthand=shorthand)
        return cls

    return deco


def _load_plugins() -> None:
    """Import built-in families, then third-party ones from the entry-point group, once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import strategies.builtin  # noqa: F401  (registers the built-in families)

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not hide the built-ins; say which one
            raise BenchError(
                f"strategy plugin {ep.name!r} ({ep.value}) failed to import: {exc}. "
                f"Fix or uninstall the package that provides it."
            ) from exc


def registered() -> dict[str, StrategyInfo]:
    _load_plugins()
    return dict(_REGISTRY)


def list_strategies(pattern: str = "*") -> list[str]:
    """Names of registered strategy families matching a shell wildcard, sorted."""
    return sorted(n for n in registered() if fnmatch.fnmatch(n, pattern))


# ---------------------------------------------------------------------------------------------
# Modifiers: orthogonal switches that compose with any strategy where they make sense.

PRECISIONS = ("fp32", "auto", "fp16", "bf16")


@dataclass(frozen=True)
class Modifiers:
    precision: str = "fp32"  # fp32 | auto (fp16 on CUDA, bf16 elsewhere) | fp16 | bf16
    cache: bool = False

    def spelling(self) -> str:
        parts = []
        if self.precision != "fp32":
            parts.append("amp" if self.precision == "auto" else f"amp:{self.precision}")
        if self.cache:
            parts.append("cache")
        return "".join("+" + p for p in parts)


MODIFIER_HELP = {
    "amp": "mixed precision: fp16 with loss scaling on CUDA, bf16 where fp16 is unavailable (amp:bf16, amp:fp16 to force)",
    "cache": "run the frozen prefix once per clip (eval mode, stored fp16) and train on the stored output",
}


def _parse_modifier(token: str, mods: Modifiers, spelling: str) -> Modifiers:
    name, _, arg = token.partition(":")
    if name == "amp":
        precision = arg or "auto"
        if precision not in ("auto", "fp16", "bf16"):
            raise BenchError(f"in {spelling!r}: amp takes fp16 or bf16, not {arg!r}")
        return dataclasses.replace(mods, precision=precision)
    if name == "cache":
        if arg:
            raise BenchError(f"in {spelling!r}: cache takes no argument")
        return dataclasses.replace(mods, cache=True)
    raise BenchError(
        f"unknown modifier {name!r} in {spelling!r}; valid modifiers: {', '.join(MODIFIER_HELP)}"
    )


# ---------------------------------------------------------------------------------------------
# Parsing a full spelling.


@dataclass(frozen=True)
class StrategySpec:
    """A strategy instance plus its modifiers: everything the run needs to know about 'how to train'."""

    strategy: Any  # an instance of a registered strategy dataclass
    modifiers: Modifiers

    @property
    def name(self) -> str:
        return self.strategy.spelling() + self.modifiers.spelling()

    @property
    def family(self) -> str:
        return self.strategy.family

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "params": dataclasses.asdict(self.strategy),
            "precision": self.modifiers.precision,
            "cache": self.modifiers.cache,
        }


def _convert(value: str, typ: Any, field: str, spelling: str) -> Any:
    try:
        if typ is int:
            return int(value)
        if typ is float:
            return float(value)
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typing.get_origin(typ) is tuple:
            return tuple(v for v in value.split("|") if v)
        return value
    except ValueError:
        raise BenchError(
            f"in {spelling!r}: parameter {field}={value!r} is not a valid {getattr(typ, '__name__', typ)}"
        ) from None


def _split_params(text: str) -> list[tuple[str, str]]:
    """`r=16,alpha=32,targets=q,k,v` -> [(r,16),(alpha,32),(targets,q|k|v)]: bare items extend the previous list."""
    pairs: list[tuple[str, str]] = []
    for item in (t for t in text.split(",") if t):
        if "=" in item:
            key, _, val = item.partition("=")
            pairs.append((key.strip(), val.strip()))
        elif pairs:
            key, val = pairs[-1]
            pairs[-1] = (key, f"{val}|{item.strip()}")
        else:
            raise BenchError(f"parameter {item!r} needs a name: write name=value")
    return [(k, v.replace(",", "|")) for k, v in pairs]


def parse_strategy(spelling: str) -> StrategySpec:
    """Parse `family[N][:k=v,...][+modifier[:arg]]...` into a validated StrategySpec.

    Raises BenchError naming the valid families, parameters or modifiers when something is unknown.
    """
    spelling = spelling.strip()
    if not spelling:
        raise BenchError("empty strategy name; see --list-strategies")
    base, *mod_tokens = spelling.split("+")
    fam_part, _, param_text = base.partition(":")
    reg = registered()
    m = re.fullmatch(r"([a-z_]+?)(\d*)", fam_part)
    family, number = (m.group(1), m.group(2)) if m else (fam_part, "")
    if family not in reg:
        raise BenchError(
            f"unknown strategy {fam_part!r}; valid strategies: {', '.join(sorted(reg))} "
            f"(see --list-strategies)"
        )
    info = reg[family]
    hints = typing.get_type_hints(info.cls)
    fields = {f.name for f in dataclasses.fields(info.cls) if f.init}
    kwargs: dict[str, Any] = {}
    if number:
        if info.shorthand is None:
            raise BenchError(f"strategy {family!r} takes no number suffix (got {fam_part!r})")
        kwargs[info.shorthand] = int(number)
    for key, val in _split_params(param_text):
        if key not in fields:
            raise BenchError(
                f"strategy {family!r} has no parameter {key!r}; its parameters: {', '.join(sorted(fields)) or 'none'}"
            )
        kwargs[key] = _convert(val, hints[key], key, spelling)
    try:
        strategy = info.cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"invalid parameters in {spelling!r}: {exc}") from None
    mods = Modifiers()
    for tok in mod_tokens:
        mods = _parse_modifier(tok, mods, spelling)
    if mods.cache and not strategy.cacheable():
        raise BenchError(
            f"{spelling!r}: strategy {family!r} trains from the first layer, so there is no frozen "
            f"prefix to cache; drop '+cache' or use a partial strategy (e.g. partial3+cache)"
        )
    return StrategySpec(strategy=strategy, modifiers=mods)


def describe(info: StrategyInfo) -> str:
    """One line for --list-strategies: the spelling with its parameters and the summary."""
    params = [
        f"{f.name}={f.default!r}"
        for f in dataclasses.fields(info.cls)
        if f.init and f.default is not dataclasses.MISSING
    ]
    shorthand = f"{info.name}<{info.shorthand}>" if info.shorthand else info.name
    return f"{shorthand}  [{', '.join(params)}]  {info.summary}"

"""The strategy registry: a dict and a decorator, as in timm.

A strategy family registers a frozen dataclass under a short name. Its fields are its typed
parameters, parsed from the command-line spelling (`partial3`, `lora3:r=16,alpha=32,targets=q,v`)
and printed back identically by `spelling()`. Modifiers (`+amp`, `+cache`, `+ckpt`, `+compile`,
`+graph`)
are parsed here too, so that one function turns any spelling into a validated `StrategySpec`, and
refuses impossible combinations, before anything trains.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

from bench.config import CACHE_DTYPES, COMPILE_BACKENDS, Modifiers
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
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"strategy name {name!r} must be lowercase letters, digits, underscores")
    if shorthand is not None and name[-1].isdigit():
        # ia3 + k=3 would read "ia33": a trailing-number shorthand needs a name ending in a letter.
        raise ValueError(f"strategy {name!r} ends in a digit, so it cannot take a number suffix")

    def deco(cls: type[T]) -> type[T]:
        if name in _REGISTRY:
            raise ValueError(
                f"strategy {name!r} is registered twice ({_REGISTRY[name].cls.__module__} and {cls.__module__})"
            )
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"strategy {name!r} must be a dataclass")
        cls.family = name  # type: ignore[attr-defined]
        cls.shorthand = shorthand  # type: ignore[attr-defined]
        _REGISTRY[name] = StrategyInfo(name=name, cls=cls, summary=summary, shorthand=shorthand)
        return cls

    return deco


def _load_plugins() -> None:
    """Import third-party families from the entry-point group, once. (The built-in families are
    imported by the `strategies` package itself; this module imports none of them.)"""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
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

# name -> (argument syntax, one line of what it does); printed by --list-strategies.
MODIFIER_HELP = {
    "amp": (
        "[:fp16|bf16]",
        "mixed precision: bf16 where the device has it, else fp16 with loss scaling",
    ),
    "cache": (
        "[:fp16|bf16|fp32]",
        "run the frozen prefix once per clip (eval mode) and train on its stored output (fp16)",
    ),
    "ckpt": ("", "gradient checkpointing of the trainable transformer layers (less memory)"),
    "compile": (
        "[:inductor|aot_eager|eager]",
        "torch.compile the layers and head (inductor: CUDA, or CPU with a C++ compiler)",
    ),
    "graph": (
        "",
        "replay the frozen prefix as a CUDA graph per input shape (CUDA; fewer launches, same result)",
    ),
}


def _parse_modifier(token: str, mods: Modifiers, spelling: str) -> Modifiers:
    name, _, arg = token.partition(":")
    if name == "amp":
        precision = arg or "auto"
        if precision not in ("auto", "fp16", "bf16"):
            raise BenchError(f"in {spelling!r}: amp takes fp16 or bf16, not {arg!r}")
        return dataclasses.replace(mods, precision=precision)
    if name == "cache":
        dtype = arg or "fp16"
        if dtype not in CACHE_DTYPES:
            raise BenchError(
                f"in {spelling!r}: cache takes {' or '.join(CACHE_DTYPES)}, not {arg!r}"
            )
        return dataclasses.replace(mods, cache=True, cache_dtype=dtype)
    if name == "ckpt":
        if arg:
            raise BenchError(f"in {spelling!r}: ckpt takes no argument")
        return dataclasses.replace(mods, ckpt=True)
    if name == "compile":
        backend = arg or "inductor"
        if backend not in COMPILE_BACKENDS:
            raise BenchError(
                f"in {spelling!r}: compile takes one of {', '.join(COMPILE_BACKENDS)}, not {arg!r}"
            )
        return dataclasses.replace(mods, compile=backend)
    if name == "graph":
        if arg:
            raise BenchError(f"in {spelling!r}: graph takes no argument")
        return dataclasses.replace(mods, graph=True)
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
        m = self.modifiers
        return {
            "name": self.name,
            "family": self.family,
            "params": dataclasses.asdict(self.strategy),
            "precision": m.precision,
            "cache": m.cache,
            "cache_dtype": m.cache_dtype if m.cache else None,
            "gradient_checkpointing": m.ckpt,
            "compile": m.compile,
            "cuda_graph": m.graph,
        }


def _convert(value: str, typ: Any, field: str, spelling: str) -> Any:
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        if value.lower() == "none":
            return None
        (typ,) = [t for t in typing.get_args(typ) if t is not type(None)]
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


def _split_family(fam_part: str, reg: dict[str, StrategyInfo]) -> tuple[str, str]:
    """`partial3` -> (partial, 3); `ia3` -> (ia3, ''): an exact registered name wins over a suffix."""
    if fam_part in reg:
        return fam_part, ""
    m = re.fullmatch(r"([a-z][a-z0-9_]*?)(\d+)", fam_part)
    return (m.group(1), m.group(2)) if m else (fam_part, "")


def split_strategy_list(text: str) -> list[str]:
    """`lora:r=16,alpha=8,partial3+amp` -> [`lora:r=16,alpha=8`, `partial3+amp`]: a comma
    separates strategies only where a strategy's name follows it; elsewhere it separates that
    strategy's parameters (`alpha=8`) or the items of a list parameter (`targets=q,v,ff1`)."""
    reg = registered()
    names: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        head = re.split(r"[:+]", piece, maxsplit=1)[0]
        starts = "=" not in head and _split_family(head, reg)[0] in reg
        # Only a strategy whose parameters are open (`lora:r=16`, no modifier yet) continues.
        open_params = bool(names) and ":" in names[-1] and "+" not in names[-1]
        if starts or not open_params:
            names.append(piece)
        else:
            names[-1] += "," + piece
    return [n for n in names if n.strip(", ")]


def parse_strategy(spelling: str) -> StrategySpec:
    """Parse `family[N][:k=v,...][+modifier[:arg]]...` into a validated StrategySpec.

    Raises BenchError naming the valid families, parameters or modifiers when something is unknown,
    and the reason when a combination cannot work (`full+cache`, `head+ckpt`, a repeated modifier).
    """
    spelling = spelling.strip()
    if not spelling:
        raise BenchError("empty strategy name; see --list-strategies")
    base, *mod_tokens = spelling.split("+")
    fam_part, _, param_text = base.partition(":")
    reg = registered()
    family, number = _split_family(fam_part, reg)
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
        if key in kwargs:
            raise BenchError(f"in {spelling!r}: {key} is given twice; keep one")
        kwargs[key] = _convert(val, hints[key], key, spelling)
    try:
        strategy = info.cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"invalid parameters in {spelling!r}: {exc}") from None
    mods = Modifiers()
    seen: set[str] = set()
    for tok in mod_tokens:
        name = tok.partition(":")[0]
        if name in seen:
            raise BenchError(f"in {spelling!r}: modifier {name!r} is given twice; keep one")
        seen.add(name)
        mods = _parse_modifier(tok, mods, spelling)
    _refuse_impossible(strategy, mods, spelling)
    return StrategySpec(strategy=strategy, modifiers=mods)


def fp32_twin(spelling: str) -> str:
    """The same strategy without reduced precision: `partial3+amp+cache` -> `partial3+cache`."""
    spec = parse_strategy(spelling)
    fp32 = dataclasses.replace(spec.modifiers, precision="fp32")
    return spec.strategy.spelling() + fp32.spelling()


def _refuse_impossible(strategy: Any, mods: Modifiers, spelling: str) -> None:
    if mods.cache and not strategy.cacheable():
        raise BenchError(
            f"{spelling!r}: strategy {strategy.family!r} trains from the first transformer layer "
            f"(or below), so there is no frozen prefix to cache; drop '+cache' or use a strategy "
            f"with a frozen prefix (partial3+cache, lora3+cache, head+cache)"
        )
    if mods.ckpt and not strategy.trains_encoder_layers():
        raise BenchError(
            f"{spelling!r}: strategy {strategy.family!r} trains no transformer layer, so gradient "
            f"checkpointing has no activations to recompute; drop '+ckpt'"
        )
    if mods.graph and not strategy.cacheable():
        raise BenchError(
            f"{spelling!r}: strategy {strategy.family!r} trains from the first transformer layer "
            f"(or below), so there is no frozen prefix to replay as a CUDA graph; drop '+graph'"
        )
    if mods.graph and mods.cache:
        raise BenchError(
            f"{spelling!r}: with '+cache' training reads the frozen prefix's stored output and "
            f"never runs the prefix, so '+graph' has nothing to replay; keep one of them"
        )
    if mods.graph and mods.compile is not None:
        raise BenchError(
            f"{spelling!r}: '+graph' captures the eager prefix and '+compile' compiles it; "
            f"keep one of them"
        )


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def describe(info: StrategyInfo) -> str:
    """One line for --list-strategies: the spelling with its parameters and the summary."""
    fields = [f for f in dataclasses.fields(info.cls) if f.init]
    params = [f"{f.name}={_shown(f.default)}" for f in fields if f.name != info.shorthand]
    name = info.name
    for f in fields:
        if f.name == info.shorthand:  # partial<k>: the number suffix
            name += f"<{f.name}>"
    shown = f"{name}:{','.join(params)}" if params else name
    return f"{shown:<60} {info.summary}"


def describe_modifiers() -> list[str]:
    """One line per modifier for --list-strategies."""
    return [f"{'+' + name + args:<36} {text}" for name, (args, text) in MODIFIER_HELP.items()]

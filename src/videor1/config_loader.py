"""The generic config loader: YAML in, checked dataclasses out, and back; nothing about videor1's sections.

``ConfigError`` and the range checks the sections' ``validate`` use; ``from_dict`` / ``to_dict`` (an
unknown key, a wrong type, a value outside a ``Literal`` or a NaN raises ``ConfigError`` naming the
dotted key); ``load_raw`` (YAML, with ``1e-6`` read as a float, plus dotted ``key=value`` overrides),
``explicit_section`` and ``load_dataclass`` (any config dataclass from a YAML file); ``field_docs`` /
``explain`` for ``videor1 config --explain``. The sections are :mod:`videor1.config`, which re-exports
these names.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import math
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the dotted key."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-6`` as a float (YAML 1.1 requires a dot: ``1.0e-6``) and refuses
    a key given twice in one mapping (PyYAML keeps the last silently; a second ``train:`` section
    would drop the first's keys)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges are YAML's own override
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            line = key_node.start_mark.line + 1
            if seen is not None:
                raise ConfigError(f"duplicate key {key!r} on line {line} (first given on line {seen})")
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def _require(ok: bool, key: str, value: Any, rule: str) -> None:
    """Raise ``ConfigError("<key> must be <rule>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


def _at_least(section: Any, prefix: str, minimum: int | float, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value is not None:
            _require(value >= minimum, f"{prefix}.{name}", value, f">= {minimum}")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        return f"list[{_type_name(inner)}]"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, base: Any = None) -> Any:
    """Check/convert one YAML value to the annotated type; raise ConfigError naming ``key``.

    ``base``: the value this key has when the YAML leaves it out (the parent's default); a mapping
    for a nested section is merged over it (see :func:`from_dict`).
    """
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{key}: {value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: null is not allowed (expected {_type_name(tp)})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, base)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not a {_type_name(tp)}")
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list ({_type_name(tp)}), got {value!r}")
        return [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=key, base=base if isinstance(base, tp) else None)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "", base: Any = None) -> Any:
    """Build dataclass ``cls`` from a mapping merged over ``base``; unknown keys raise.

    Keys the mapping leaves out keep their value in ``base``: the parent's default for a nested
    section (``eval.sampling`` defaults to temperature 0.1, so ``eval.sampling.max_new_tokens=8``
    keeps 0.1), ``cls()`` when there is no parent default. Keys a class lists in ``exclusive_keys``
    (``TrainConfig``: ``max_steps`` / ``epochs``, two ways to give one thing) are the exception: a
    given section chooses among them itself, the others take their class defaults (so a ``train``
    section must say how long the run is; ``Config``'s ``max_steps=1`` only serves commands that
    never train).
    """
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = copy.deepcopy(base) if base is not None else cls()
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise ConfigError(f"unknown config key {dotted!r}; {cls.__name__} accepts: {', '.join(fields)}")
        kwargs[key] = _convert(value, hints[key], dotted, getattr(defaults, key))
    for group in getattr(cls, "exclusive_keys", ()):
        for name in group:
            if name not in data:
                kwargs[name] = _class_default(fields[name])
    return dataclasses.replace(defaults, **kwargs)


def _class_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML-ready) view of a config dataclass."""
    return dataclasses.asdict(obj)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{dotted key: leaf value}``.

    >>> flatten({"train": {"lr": 1e-6, "adam": {"b1": 0.9}}, "seed": 0})
    {'train.lr': 1e-06, 'train.adam.b1': 0.9, 'seed': 0}
    """
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def load_raw(path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The YAML mapping with the dotted overrides applied, before typing: what the user set explicitly."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = _yaml_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML: {e}") from e
        except ConfigError as e:  # a duplicate key
            raise ConfigError(f"{p}: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
        data = loaded
    for item in overrides or []:
        _apply_override(data, item)
    return data


def explicit_section(raw: dict[str, Any], dotted: str) -> dict[str, Any]:
    """The keys set explicitly under ``dotted`` (e.g. ``"data.media"``) in a :func:`load_raw` mapping."""
    node: Any = raw
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return dict(node) if isinstance(node, dict) else {}


def load_dataclass(cls: type, path: str | Path, overrides: list[str] | None = None) -> Any:
    """Load a YAML mapping into any config dataclass ``cls``, as strictly as ``load_config``.

    Unknown keys, wrong types and dotted overrides (``key=value``) behave as for ``Config``; errors
    name the file and the dotted key.
    """
    try:
        return from_dict(cls, load_raw(path, overrides))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _apply_override(data: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {item!r}: empty key component")
    value = _yaml_load(raw) if raw.strip() else ""
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field (used by ``videor1 config --explain``)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = nxt.value.value.strip()
    return docs


def explain(cls: type, prefix: str = "", instance: Any = None) -> list[tuple[str, str, Any, str]]:
    """Rows of (dotted key, type, default, doc) for every leaf field; ``instance`` holds the defaults
    (a nested section's come from its parent, as :func:`from_dict` merges them)."""
    rows = []
    hints = get_type_hints(cls)
    docs = field_docs(cls)
    instance = cls() if instance is None else instance
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        default = getattr(instance, f.name)
        nested = [a for a in (get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
        if nested:
            rows.extend(explain(nested[0], key, default if isinstance(default, nested[0]) else None))
        else:
            rows.append((key, _type_name(tp), default, docs.get(f.name, "")))
    return rows

"""Expectations and captured values: small expressions over a JSON answer, and `${...}`
references to what earlier steps captured.

An expression is a Python comparison over names, with nothing callable but a few pure
functions: `status == 201`, `body.state in ['active', 'starting']`, `len(body) == 3`,
`recovered > 0 and underruns == 0`, `40 <= latency_ms <= 400`. A name is looked up in the
step's context (`status`, `body`, an event's `kind` and `data`, a metric); `.x` and `[i]`
go into it. Nothing else is allowed: `parse` refuses attribute calls, lambdas, imports
and the rest with the offending part named, so a scenario file can be trusted to be data.

`${name}` in a string is replaced before use: by a captured value or a node's property
(`${a.uid}`, `${a.host}`); inside an expression by the value's literal (`'1f73e2'`).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "CONSTANTS",
    "ExpressionError",
    "Undefined",
    "evaluate",
    "parse",
    "references",
    "substitute",
    "substitute_value",
]

REFERENCE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\}")

_COMPARE: Final[dict[type[ast.cmpop], Callable[[Any, Any], bool]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITH: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _port(uri: str) -> int:
    """The port of "scheme://host:port" (or "host:port")."""
    return int(str(uri).rsplit(":", 1)[1].strip("/"))


def _host(uri: str) -> str:
    """The host of "scheme://host:port" (or "host:port")."""
    return str(uri).split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "port": _port,
    "host": _host,
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "any": any,
    "all": all,
    "sum": sum,
    "str": str,
    "int": int,
    "float": float,
}
#: Names every expression knows (besides its step's values).
CONSTANTS: Final = {"true": True, "false": False, "null": None, "inf": math.inf}


class ExpressionError(ValueError):
    """An expression that cannot be parsed, or a value it names that is not there."""


class Undefined(ExpressionError):
    """A `${name}` with nothing captured under that name (yet)."""


def parse(text: str) -> ast.Expression:
    """The checked syntax tree of `text`; ExpressionError naming what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{text!r}: not an expression ({exc.msg})") from None
    for node in ast.walk(tree):
        _check(node, text)
    return tree


def _check(node: ast.AST, text: str) -> None:
    allowed = (
        ast.Expression,
        ast.Compare,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.BinOp,
        ast.Name,
        ast.Load,
        ast.Attribute,
        ast.Subscript,
        ast.Constant,
        ast.List,
        ast.Tuple,
        ast.Call,
        *_COMPARE,
        *_ARITH,
    )
    if not isinstance(node, allowed):
        raise ExpressionError(f"{text!r}: {type(node).__name__} is not allowed in an expression")
    if isinstance(node, ast.Call) and not (
        isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords
    ):
        raise ExpressionError(f"{text!r}: only {', '.join(sorted(_FUNCTIONS))}(...) may be called")
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ExpressionError(f"{text!r}: no field starts with '_'")


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """The value of expression `text` in `context`; ExpressionError when a name or field
    is missing (naming it and what there is instead)."""
    return _eval(parse(text).body, context, text)


def _eval(node: ast.AST, ctx: Mapping[str, Any], text: str) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            if name in ctx:
                return ctx[name]
            if name in CONSTANTS:
                return CONSTANTS[name]
            raise ExpressionError(f"{text!r}: no {name!r} here (there is {_names(ctx)})")
        case ast.Attribute(value=inner, attr=attr):
            return _field(_eval(inner, ctx, text), attr, ast.unparse(node), text)
        case ast.Subscript(value=inner, slice=index):
            return _field(_eval(inner, ctx, text), _eval(index, ctx, text), ast.unparse(node), text)
        case ast.List(elts=items) | ast.Tuple(elts=items):
            return [_eval(item, ctx, text) for item in items]
        case ast.UnaryOp(op=ast.Not(), operand=inner):
            return not _eval(inner, ctx, text)
        case ast.UnaryOp(op=ast.USub(), operand=inner):
            return -_eval(inner, ctx, text)
        case ast.BoolOp(op=ast.And(), values=values):
            return all(_eval(v, ctx, text) for v in values)
        case ast.BoolOp(op=ast.Or(), values=values):
            return any(_eval(v, ctx, text) for v in values)
        case ast.BinOp(left=left, op=arith, right=right):
            return _apply(
                _ARITH[type(arith)], _eval(left, ctx, text), _eval(right, ctx, text), text=text
            )
        case ast.Compare(left=left, ops=ops, comparators=rights):
            value = _eval(left, ctx, text)
            for op, right_node in zip(ops, rights, strict=True):
                right = _eval(right_node, ctx, text)
                if not _apply(_COMPARE[type(op)], value, right, text=text):
                    return False
                value = right
            return True
        case ast.Call(func=ast.Name(id=name), args=args):
            return _apply(_FUNCTIONS[name], *(_eval(a, ctx, text) for a in args), text=text)
    raise ExpressionError(f"{text!r}: cannot evaluate {ast.unparse(node)}")


def _apply(function: Callable[..., Any], *args: Any, text: str) -> Any:
    try:
        return function(*args)
    except (TypeError, ValueError, ZeroDivisionError, IndexError) as exc:
        shown = ", ".join(_short(a) for a in args)
        raise ExpressionError(f"{text!r}: {exc} (with {shown})") from None


def _field(value: Any, key: Any, where: str, text: str) -> Any:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        raise ExpressionError(f"{text!r}: {where}: no such field (there is {_names(value)})")
    if isinstance(value, list) and isinstance(key, int):
        if -len(value) <= key < len(value):
            return value[key]
        raise ExpressionError(f"{text!r}: {where}: no item {key} in a list of {len(value)}")
    raise ExpressionError(f"{text!r}: {where}: {_short(value)} has no field {key!r}")


def _names(ctx: Mapping[str, Any]) -> str:
    names = sorted(str(k) for k in ctx)
    if not names:
        return "nothing"
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def references(text: str) -> list[str]:
    """The `${...}` names in `text`, in order."""
    return REFERENCE.findall(text)


def substitute(text: str, values: Mapping[str, Any], *, literal: bool = False) -> str:
    """`text` with each `${name}` replaced by its value (`literal`: as an expression
    literal, so strings get quotes); Undefined for a name with no value."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise Undefined(f"${{{name}}} is not defined (yet)")
        value = values[name]
        return repr(value) if literal else str(value)

    return REFERENCE.sub(one, text)


def substitute_value(value: Any, values: Mapping[str, Any]) -> Any:
    """A JSON value with references replaced inside every string; a string that is only
    one reference becomes the value itself (a number stays a number)."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole is not None:
            if whole.group(1) not in values:
                raise Undefined(f"{value} is not defined (yet)")
            return values[whole.group(1)]
        return substitute(value, values)
    if isinstance(value, list):
        return [substitute_value(v, values) for v in value]
    if isinstance(value, dict):
        return {k: substitute_value(v, values) for k, v in value.items()}
    return value

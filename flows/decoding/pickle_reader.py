"""Pickle bodies read without unpickling: a `pickletools` disassembly and a literal reading.

`pickle.loads` of a message runs whatever its publisher put in it (a pickle names a
callable and its arguments, and the unpickler calls it). Nothing here calls it, imports a
module a pickle names, or builds any object but plain data. `pickletools.genops` parses the
opcodes and their arguments; `read_literal` runs a small stack machine that understands only
the opcodes of literals (numbers, text, bytes, None and booleans, tuples, lists, dicts,
sets) and shows every other thing, a global, a call, an object's state, as an `Opaque`
marker such as `<global os.system>('touch /tmp/x')`.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flows.decoding.bounds import MAX_TEXT_CHARS, Budget, LimitReached
from flows.decoding.values import Opaque, literal_text

CONTENT_TYPES = frozenset(
    {"application/x-python-serialize", "application/python-pickle", "application/x-pickle"}
)
MAX_OPS = 500_000
# How much of an argument list a marker shows: `<global x.y>(…)` must stay one readable line.
MARKER_ARGS_CHARS = 200


def looks_like_pickle(data: bytes) -> bool:
    """Protocol 2 and later pickles start with PROTO (0x80) and end with STOP (`.`)."""
    return len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= 5 and data.endswith(b".")


# --- disassembly --------------------------------------------------------------------------------


class _Full(Exception):
    pass


class _BoundedText(io.StringIO):
    """What `pickletools.dis` writes, up to a length; then writing stops the disassembly."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.left = limit

    def write(self, text: str) -> int:
        self.left -= len(text)
        if self.left < 0:
            super().write(text[: len(text) + self.left])
            raise _Full
        return super().write(text)


def disassemble(data: bytes, *, max_chars: int = MAX_TEXT_CHARS) -> tuple[str, str]:
    """(`pickletools.dis` of `data`, the reason it stopped early or "")."""
    out = _BoundedText(max_chars)
    try:
        pickletools.dis(data, out=out, indentlevel=2)
    except _Full:
        return out.getvalue(), f"disassembly cut at {max_chars} characters"
    except Exception as exc:  # any parse failure is shown, never raised
        return out.getvalue(), f"stopped: {exc}"
    return out.getvalue(), ""


# --- the literal reading ------------------------------------------------------------------------


class Malformed(Exception):
    pass


@dataclass(frozen=True)
class LiteralReading:
    value: Any
    protocol: int | None
    markers: tuple[str, ...]  # the opaque things met, in order, each once


_MARK = object()


def _marker_args(args: Any) -> str:
    """A call's arguments as `(a, b)` for a marker: bounded, markers inside written bare."""
    if not isinstance(args, tuple):  # a malformed call: its "arguments" are not a tuple
        return f"(*{literal_text(args, width=10**9, max_chars=MARKER_ARGS_CHARS)})"
    text = literal_text(list(args), width=10**9, max_chars=MARKER_ARGS_CHARS)
    return f"({text[1:-1]})" if text.endswith("]") else f"({text[1:]})"


class _Reader:
    """The literal opcodes of `pickle._Unpickler`, and markers for the rest."""

    def __init__(self, budget: Budget) -> None:
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.markers: dict[str, None] = {}
        self.protocol: int | None = None
        self.budget = budget

    # helpers ----------------------------------------------------------------------------------

    def pop(self) -> Any:
        if not self.stack:
            raise Malformed("the stack is empty")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise Malformed("the stack is empty")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise Malformed("no mark to pop to")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def opaque(self, text: str) -> Opaque:
        head = text.split(">", 1)[0] + ">" if text.startswith("<") else text
        self.markers.setdefault(head, None)
        return Opaque(text)

    @staticmethod
    def hashable(value: Any) -> Any:
        """A dict key or set member; what cannot be one is written out as a marker."""
        try:
            hash(value)
        except TypeError:
            return Opaque(literal_text(value, width=10**9, max_chars=MARKER_ARGS_CHARS))
        return value

    # the machine ------------------------------------------------------------------------------

    def run(self, data: bytes) -> Any:
        for count, (opcode, arg, pos) in enumerate(pickletools.genops(data)):
            if count % 1000 == 0:
                self.budget.check()
                if count >= MAX_OPS:
                    raise LimitReached(f"more than {MAX_OPS} opcodes")
            name = opcode.name
            handler = _HANDLERS.get(name)
            try:
                if name == "STOP":
                    return self.pop()
                if handler is not None:
                    handler(self, arg)
                elif name in _PUSH_ARG:
                    self.stack.append(arg)
                else:
                    raise Malformed(f"opcode {name} is not understood")
            except Malformed as exc:
                raise Malformed(f"{name} at byte {pos}: {exc}") from None
        raise Malformed("no STOP opcode")

    def proto(self, arg: Any) -> None:
        self.protocol = arg

    def mark(self, _arg: Any) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def pop_op(self, _arg: Any) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def pop_mark_op(self, _arg: Any) -> None:
        self.pop_mark()

    def dup(self, _arg: Any) -> None:
        self.stack.append(self.top())

    def tuple_n(self, n: int) -> None:
        if len(self.stack) < n:
            raise Malformed("the stack is too short")
        items = tuple(self.stack[len(self.stack) - n :])
        del self.stack[len(self.stack) - n :]
        self.stack.append(items)

    def tuple_mark(self, _arg: Any) -> None:
        items = tuple(self.pop_mark())  # before `self.stack` is read: pop_mark replaces it
        self.stack.append(items)

    def list_mark(self, _arg: Any) -> None:
        items = self.pop_mark()
        self.stack.append(items)

    def append(self, _arg: Any) -> None:
        value = self.pop()
        self._extend(self.top(), [value])

    def appends(self, _arg: Any) -> None:
        items = self.pop_mark()
        self._extend(self.top(), items)

    def _extend(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, list):
            target.extend(items)
        else:  # an object the pickle builds (a list subclass, say): shown with its items
            self._grow_marker(target, items)

    def _grow_marker(self, target: Any, items: Any) -> None:
        added = literal_text(items, width=10**9, max_chars=MARKER_ARGS_CHARS)
        self.stack[-1] = Opaque(f"{_callable_text(target)} + {added}")

    def dict_mark(self, _arg: Any) -> None:
        items = self.pop_mark()
        self.stack.append(self._pairs({}, items))

    def setitem(self, _arg: Any) -> None:
        value = self.pop()
        key = self.pop()
        self._pairs(self.top(), [key, value])

    def setitems(self, _arg: Any) -> None:
        items = self.pop_mark()
        self._pairs(self.top(), items)

    def _pairs(self, target: Any, items: list[Any]) -> Any:
        if len(items) % 2:
            raise Malformed("an odd number of items for a dict")
        if isinstance(target, dict):
            for index in range(0, len(items), 2):
                target[self.hashable(items[index])] = items[index + 1]
        else:  # an OrderedDict, a defaultdict...: shown with its items
            pairs = {self.hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}
            self._grow_marker(target, pairs)
        return target

    def additems(self, _arg: Any) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, set):
            target.update(self.hashable(item) for item in items)
        else:
            self._grow_marker(target, items)

    def frozenset_mark(self, _arg: Any) -> None:
        items = self.pop_mark()
        self.stack.append(frozenset(self.hashable(item) for item in items))

    def put(self, arg: Any) -> None:
        self.memo[arg] = self.top()

    def memoize(self, _arg: Any) -> None:
        self.memo[len(self.memo)] = self.top()

    def get(self, arg: Any) -> None:
        if arg not in self.memo:
            raise Malformed(f"memo {arg} was never stored")
        self.stack.append(self.memo[arg])

    def global_op(self, arg: Any) -> None:
        module, _, name = str(arg).partition(" ")
        self.stack.append(self.opaque(f"<global {module}.{name}>"))

    def stack_global(self, _arg: Any) -> None:
        name = self.pop()
        module = self.pop()
        self.stack.append(self.opaque(f"<global {module}.{name}>"))

    def reduce(self, _arg: Any) -> None:
        args = self.pop()
        func = self.pop()
        self.stack.append(self.opaque(f"{_callable_text(func)}{_marker_args(args)}"))

    def build(self, _arg: Any) -> None:
        state = self.pop()
        obj = self.pop()
        state_text = literal_text(state, width=10**9, max_chars=MARKER_ARGS_CHARS)
        self.stack.append(self.opaque(f"{_callable_text(obj)}.__setstate__({state_text})"))

    def inst(self, arg: Any) -> None:
        module, _, name = str(arg).partition(" ")
        args = tuple(self.pop_mark())
        self.stack.append(self.opaque(f"<global {module}.{name}>{_marker_args(args)}"))

    def obj(self, _arg: Any) -> None:
        items = self.pop_mark()
        if not items:
            raise Malformed("OBJ without a class")
        cls, args = items[0], tuple(items[1:])
        self.stack.append(self.opaque(f"{_callable_text(cls)}{_marker_args(args)}"))

    def newobj(self, _arg: Any) -> None:
        args = self.pop()
        cls = self.pop()
        self.stack.append(self.opaque(f"{_callable_text(cls)}.__new__{_marker_args(args)}"))

    def newobj_ex(self, _arg: Any) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        kwargs_text = literal_text(kwargs, width=10**9, max_chars=MARKER_ARGS_CHARS)
        text = f"{_callable_text(cls)}.__new__{_marker_args(args)} **{kwargs_text}"
        self.stack.append(self.opaque(text))

    def persid(self, arg: Any) -> None:
        self.stack.append(self.opaque(f"<persistent id {arg!r}>"))

    def binpersid(self, _arg: Any) -> None:
        pid = self.pop()
        self.stack.append(self.opaque(f"<persistent id {literal_text(pid, max_chars=80)}>"))

    def ext(self, arg: Any) -> None:
        self.stack.append(self.opaque(f"<extension {arg}>"))

    def next_buffer(self, _arg: Any) -> None:
        self.stack.append(self.opaque("<out-of-band buffer>"))

    def nothing(self, _arg: Any) -> None:
        pass


def _callable_text(value: Any) -> str:
    if isinstance(value, Opaque):
        return value.text
    return f"<{literal_text(value, width=10**9, max_chars=80)}>"


_PUSH_ARG = frozenset(
    {
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
        "FLOAT", "BINFLOAT",
        "STRING", "BINSTRING", "SHORT_BINSTRING",
        "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
        "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
    }
)  # fmt: skip

_HANDLERS: dict[str, Callable[[_Reader, Any], None]] = {
    "PROTO": _Reader.proto,
    "FRAME": _Reader.nothing,
    "MARK": _Reader.mark,
    "POP": _Reader.pop_op,
    "POP_MARK": _Reader.pop_mark_op,
    "DUP": _Reader.dup,
    "NONE": lambda reader, _arg: reader.stack.append(None),
    "NEWTRUE": lambda reader, _arg: reader.stack.append(True),
    "NEWFALSE": lambda reader, _arg: reader.stack.append(False),
    "EMPTY_TUPLE": lambda reader, _arg: reader.stack.append(()),
    "TUPLE1": lambda reader, _arg: reader.tuple_n(1),
    "TUPLE2": lambda reader, _arg: reader.tuple_n(2),
    "TUPLE3": lambda reader, _arg: reader.tuple_n(3),
    "TUPLE": _Reader.tuple_mark,
    "EMPTY_LIST": lambda reader, _arg: reader.stack.append([]),
    "LIST": _Reader.list_mark,
    "APPEND": _Reader.append,
    "APPENDS": _Reader.appends,
    "EMPTY_DICT": lambda reader, _arg: reader.stack.append({}),
    "DICT": _Reader.dict_mark,
    "SETITEM": _Reader.setitem,
    "SETITEMS": _Reader.setitems,
    "EMPTY_SET": lambda reader, _arg: reader.stack.append(set()),
    "ADDITEMS": _Reader.additems,
    "FROZENSET": _Reader.frozenset_mark,
    "PUT": _Reader.put,
    "BINPUT": _Reader.put,
    "LONG_BINPUT": _Reader.put,
    "MEMOIZE": _Reader.memoize,
    "GET": _Reader.get,
    "BINGET": _Reader.get,
    "LONG_BINGET": _Reader.get,
    "GLOBAL": _Reader.global_op,
    "STACK_GLOBAL": _Reader.stack_global,
    "REDUCE": _Reader.reduce,
    "BUILD": _Reader.build,
    "INST": _Reader.inst,
    "OBJ": _Reader.obj,
    "NEWOBJ": _Reader.newobj,
    "NEWOBJ_EX": _Reader.newobj_ex,
    "PERSID": _Reader.persid,
    "BINPERSID": _Reader.binpersid,
    "EXT1": _Reader.ext,
    "EXT2": _Reader.ext,
    "EXT4": _Reader.ext,
    "NEXT_BUFFER": _Reader.next_buffer,
    "READONLY_BUFFER": _Reader.nothing,
}


def read_literal(data: bytes, *, budget: Budget | None = None) -> LiteralReading:
    """The value `data` pickles, built from literal opcodes only (see the module's docstring).

    Raises `Malformed` (with the opcode and its byte) or `LimitReached`; any parse error of
    `pickletools` comes out as `Malformed` too.
    """
    reader = _Reader(budget or Budget())
    try:
        value = reader.run(data)
    except (Malformed, LimitReached):
        raise
    except Exception as exc:  # pickletools' parse errors: ValueError and others
        raise Malformed(str(exc) or type(exc).__name__) from None
    return LiteralReading(value=value, protocol=reader.protocol, markers=tuple(reader.markers))

"""Plugin options declared once, as data, and the one-line errors every toolbox adapter raises.

A plugin declares each of its option sections as an ``OptionSection`` of ``Option`` entries (name, type, allowed
values or range, default, one-line help). The same declaration checks a BasicSR YAML section, an MMagic config
argument and writes the options table of the docs (``markdown_table``)::

    REGULARIZATION = OptionSection('regularization', 'growing sparsity regularisation', (
        Option('t1', 5, 'iterations between two increments of alpha', minimum=1), ...))
    values = REGULARIZATION.check(given, prefix='pruning.regularization')   # defaults filled in, or OptionError

Validated once: a section whose values are all immutable (no mapping-valued option) is checked once per content
in a process, and every later check of the same content (or of its checked values) returns the same read-only
mapping. The entry point checks first; the model, hook or scheduler that later asks again gets that object back,
however it was started (BasicSR re-reads the options file inside its pipeline, so the object cannot be handed over).
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

TYPE_NAMES = {bool: 'bool', int: 'int', float: 'float', str: 'str', list: 'list', dict: 'mapping'}


class OptionError(ValueError):
    """An option has a value that cannot work; the message names the option and the allowed values."""


def did_you_mean(values: Iterable[Any], allowed: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the allowed names close to any of ``values``, else ''."""
    allowed = list(allowed)
    close = [c for v in values for c in difflib.get_close_matches(str(v), allowed, n=3)]
    return f' Did you mean {" or ".join(map(repr, dict.fromkeys(close)))}?' if close else ''


def unknown_choice(option: str, value: Any, allowed: Iterable[str]) -> OptionError:
    """Error for a value outside ``allowed``, with the closest allowed names as a hint."""
    allowed = sorted(allowed)
    return OptionError(f'{option}: {value!r} is not one of the allowed values ({", ".join(allowed)}).'
                       f'{did_you_mean([value], allowed)}')


def check_keys(option: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Reject keys of a section that its reader does not know (typos must not be ignored)."""
    allowed = sorted(allowed)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise OptionError(f'{option}: unknown key(s) {", ".join(map(str, unknown))}; allowed: {", ".join(allowed)}.'
                          f'{did_you_mean(unknown, allowed)}')


def parameter_names(func: Callable, skip: Iterable[str] = ('self',)) -> list[str]:
    """Names ``func`` takes as keyword arguments (not ``*args`` / ``**kwargs``), e.g. to check config keys."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, p in inspect.signature(func).parameters.items() if p.kind in kinds and name not in skip]


@dataclass(frozen=True)
class Option:
    """One option: its value must have ``type`` (a list of ``type`` items when ``is_list``), lie in ``choices`` or
    between ``minimum`` and ``maximum`` (each excluded when ``exclusive_...``); None only if ``nullable``."""
    name: str
    default: Any
    help: str
    type: type | None = None  # default: the type of ``default``
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    nullable: bool = False
    is_list: bool = False

    @property
    def value_type(self) -> type:
        return self.type or type(self.default)

    def check(self, value: Any, option: str) -> Any:
        """``value`` if it is allowed, else an ``OptionError`` naming ``option`` and what is allowed."""
        if value is None:
            if self.nullable:
                return None
            raise OptionError(f'{option}: must be set ({self.allowed_text()}).')
        if self.is_list:
            if not isinstance(value, (list, tuple)) or not value:
                raise OptionError(f'{option}: {value!r} is not a non-empty list ({self.allowed_text()}).')
            return tuple(self._check_one(item, option) for item in value)
        return self._check_one(value, option)

    def _check_one(self, value: Any, option: str) -> Any:
        expected = self.value_type
        accepted = (int, float) if expected is float else (expected,)
        if isinstance(value, bool) and expected is not bool or not isinstance(value, accepted):
            hint = ' (YAML reads 1e-4 as text: write 1.0e-4, without quotes)' if _is_number_text(value) else ''
            raise OptionError(f'{option}: {value!r} has type {TYPE_NAMES.get(type(value), type(value).__name__)}, '
                              f'expected {self.allowed_text()}{hint}.')
        if self.choices is not None and value not in self.choices:
            raise unknown_choice(option, value, [str(c) for c in self.choices if c is not None]) \
                if isinstance(value, str) else OptionError(f'{option}: {value!r} is not allowed; '
                                                           f'expected {self.allowed_text()}.')
        too_low = self.minimum is not None and (value <= self.minimum if self.exclusive_minimum
                                                else value < self.minimum)
        too_high = self.maximum is not None and (value >= self.maximum if self.exclusive_maximum
                                                 else value > self.maximum)
        if too_low or too_high:
            raise OptionError(f'{option}: {value!r} is out of range; expected {self.allowed_text()}.')
        return float(value) if expected is float else value

    def allowed_text(self) -> str:
        """What is allowed, in words (for errors and the docs table)."""
        kind = TYPE_NAMES.get(self.value_type, self.value_type.__name__)
        if self.choices is not None:
            text = 'one of ' + ', '.join(repr(c) if isinstance(c, str) else str(c) for c in self.choices
                                         if c is not None)
        elif self.minimum is not None and self.maximum is not None:
            opening = '(' if self.exclusive_minimum else '['
            closing = ')' if self.exclusive_maximum else ']'
            text = f'{kind} in {opening}{self.minimum:g}, {self.maximum:g}{closing}'
        elif self.minimum is not None:
            text = f'{kind} {">" if self.exclusive_minimum else ">="} {self.minimum:g}'
        elif self.maximum is not None:
            text = f'{kind} {"<" if self.exclusive_maximum else "<="} {self.maximum:g}'
        else:
            text = kind
        if self.is_list:
            text = f'list of {text}'
        return f'{text} or null' if self.nullable else text


@dataclass(frozen=True)
class OptionSection:
    """A mapping of options (and nested sections), e.g. the ``pruning`` section of an SSL experiment."""
    name: str
    help: str
    options: tuple['Option | OptionSection', ...]
    nullable: bool = True  # the whole section may be left out (every option takes its default)
    optional: bool = False  # left out, the section is None (a feature that is off) instead of its defaults
    where: str = ''  # where users write it in each toolbox, for the docs
    validate: Callable[[dict[str, Any], str], None] | None = None  # cross-option rule: (values, prefix) -> raise

    def __getitem__(self, name: str) -> 'Option | OptionSection':
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [option.name for option in self.options]

    @property
    def default(self) -> dict[str, Any]:
        return self.check(None, self.name)

    @property
    def immutable(self) -> bool:
        """Whether every checked value is immutable (no mapping-valued option): then a check is done once."""
        return all(option.immutable if isinstance(option, OptionSection) else option.value_type is not dict
                   for option in self.options)

    def check(self, given: Mapping[str, Any] | None, prefix: str | None = None) -> Mapping[str, Any]:
        """Every declared option of the section, checked, with defaults for the ones not given (read-only and
        shared when the section is ``immutable``; see the module docstring).

        Args:
            given: the section as written by the user (None: left out).
            prefix: the section's full option name in this toolbox (e.g. ``model.pruning``) for messages.
        """
        if given is None and self.optional:
            return None
        key = _content_key(self, given) if self.immutable else None
        if key is not None and key in _CHECKED:
            return _CHECKED[key][1]
        values = self.validate_values(given, prefix)
        if key is not None:
            values = MappingProxyType(values)
            for content in (key, _content_key(self, values)):
                _CHECKED[content] = (self, values)  # the section is held so that its id is not reused
        return values

    def validate_values(self, given: Mapping[str, Any] | None, prefix: str | None = None) -> dict[str, Any]:
        """The check itself (``check`` skips it for content already checked)."""
        prefix = prefix or self.name
        if given is None and self.optional:
            return None
        if given is None:
            if not self.nullable:
                raise OptionError(f'{prefix}: this section is required ({", ".join(self.names)}).')
            given = {}
        if not isinstance(given, Mapping):
            raise OptionError(f'{prefix}: expected a mapping of {", ".join(self.names)}, got {given!r}.')
        check_keys(prefix, given, self.names)
        values = {}
        for option in self.options:
            value = given.get(option.name, None if isinstance(option, OptionSection) else option.default)
            values[option.name] = option.check(value, f'{prefix}.{option.name}')
        if self.validate is not None:
            self.validate(values, prefix)
        return values

    def rows(self, prefix: str | None = None) -> list[tuple[str, str, str, str]]:
        """``(option, allowed, default, help)`` for every option, nested sections flattened."""
        prefix = prefix or self.name
        rows = []
        for option in self.options:
            name = f'{prefix}.{option.name}'
            if isinstance(option, OptionSection):
                if option.optional:
                    rows.append((name, 'mapping or null', 'null', f'{option.help} (left out: off)'))
                rows.extend(option.rows(name))
            else:
                rows.append((name, option.allowed_text(), _format_default(option.default), option.help))
        return rows


#: Checked values of immutable sections, by section and content (``OptionSection.check``).
_CHECKED: dict[tuple, tuple[OptionSection, Mapping[str, Any]]] = {}


def _frozen(value: Any) -> Any:
    """A hashable image of ``value`` that tells apart what a check tells apart (types included: True, 1, 1.0)."""
    if isinstance(value, Mapping):
        return ('mapping', tuple(sorted(((type(k).__name__, str(k), _frozen(v)) for k, v in value.items()),
                                        key=lambda item: item[:2])))
    if isinstance(value, (list, tuple)):
        return ('sequence', tuple(_frozen(item) for item in value))
    hash(value)
    return (type(value).__name__, value)


def _content_key(section: OptionSection, given: Any) -> tuple | None:
    try:
        return id(section), _frozen(given)
    except TypeError:  # an unhashable value: checked every time (and refused, as no option takes one)
        return None


def _is_number_text(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


def _format_default(value: Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(map(str, value)) + ']'
    return repr(value) if isinstance(value, str) else f'{value:g}' if isinstance(value, float) else str(value)


def markdown_table(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """A Markdown table of ``OptionSection.rows()``."""
    lines = ['| option | allowed | default | meaning |', '| --- | --- | --- | --- |']
    lines += [f'| `{name}` | {allowed} | `{default}` | {help_text} |' for name, allowed, default, help_text in rows]
    return '\n'.join(lines) + '\n'

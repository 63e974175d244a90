"""Option errors shared by every toolbox adapter: one line that names the option and what is allowed."""
from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping


class OptionError(ValueError):
    """An option has a value that cannot work; the message names the option and the allowed values."""


def _did_you_mean(values: Iterable[Any], allowed: list[str]) -> str:
    close = [c for v in values for c in difflib.get_close_matches(str(v), allowed, n=3)]
    return f' Did you mean {" or ".join(map(repr, dict.fromkeys(close)))}?' if close else ''


def unknown_choice(option: str, value: Any, allowed: Iterable[str]) -> OptionError:
    """Error for a value outside ``allowed``, with the closest allowed names as a hint."""
    allowed = sorted(allowed)
    return OptionError(f'{option}: {value!r} is not one of the allowed values ({", ".join(allowed)}).'
                       f'{_did_you_mean([value], allowed)}')


def check_keys(option: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Reject keys of a section that its reader does not know (typos must not be ignored)."""
    allowed = sorted(allowed)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise OptionError(f'{option}: unknown key(s) {", ".join(unknown)}; allowed: {", ".join(allowed)}.'
                          f'{_did_you_mean(unknown, allowed)}')

"""The one exception type a user ever sees, and the helper that words it.

Everything that is the user's fault (a bad name, a broken zip, missing offline data, a
hyperparameter out of range) raises :class:`TLCoreError`. The CLI turns it into exit code 2
and one line on stderr; the app turns it into a ``gr.Warning``. Anything else is our bug and
keeps its traceback.
"""
from __future__ import annotations

from collections.abc import Iterable


class TLCoreError(ValueError):
    """A problem with the user's input or environment, worded so they can fix it."""


class DataNotFoundError(TLCoreError, RuntimeError):
    """A dataset or weights file is missing and could not be downloaded."""


def verify_choice(value: str, arg: str, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise naming the valid choices.

    Like torchvision's ``verify_str_arg``: the message names the argument, the bad value
    and every valid one.
    """
    valid = list(valid)
    if value not in valid:
        raise TLCoreError(
            f"Unknown {arg} {value!r}. Valid {'choices' if arg.endswith('ed') else arg + 's'}: "
            f"{', '.join(repr(v) for v in valid)}."
        )
    return value

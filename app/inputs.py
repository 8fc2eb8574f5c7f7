"""User input -> checked values, and failures -> messages a user can act on.

Every handler reads its inputs through these functions, because the API (``gradio_client``) bypasses
the UI's slider limits: anything may arrive (None, NaN, strings, huge numbers, odd unicode).
Problems raise ``gr.Error`` (a red toast naming the field and the allowed range); recoverable ones
(text cut to fit) show a ``gr.Warning`` and go on. ``user_facing`` wraps every handler so that no
traceback ever reaches the page: unexpected failures are logged on the server and reported in a line.
Messages are HTML-escaped because gradio renders toasts as HTML.

Events are wired with ``preprocess=False``: the handler gets the raw payload and these checks are
the only ones, so a refusal always names the field (gradio's own component checks would answer
"Value -1 is less than minimum value 1." without saying which slider).
"""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import logging
import math
import re
import warnings
from typing import Callable, Iterator, Sequence

import gradio as gr

from cosmos import CheckpointError, TextTruncatedWarning

log = logging.getLogger("cosmos.app")


def refuse(message: str) -> gr.Error:
    """The error for input we refuse: a toast for the user, no traceback in the server log."""
    return gr.Error(message, print_exception=False)


def _show(value: object, limit: int = 40) -> str:
    if isinstance(value, int) and value.bit_length() > 128:   # repr() refuses ints of over 4300 digits
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    text = repr(value)
    return html.escape(text if len(text) <= limit else text[:limit] + "…")


def text(value: object, what: str, max_chars: int) -> str:
    """A non-empty string; longer than ``max_chars`` is cut (with a warning)."""
    if not isinstance(value, str):
        raise refuse(f"{what} must be text, got {type(value).__name__}.")
    value = optional_text(value, what, max_chars)
    if not value:
        raise refuse(f"{what} is empty: type a sentence or pick an example.")
    return value


def optional_text(value: object, what: str, max_chars: int) -> str:
    """A string that may be left out: "" for None, empty or blank input; otherwise stripped, and cut
    to ``max_chars`` (with a warning) like :func:`text`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise refuse(f"{what} must be text, got {type(value).__name__}.")
    value = value.encode("utf-8", "replace").decode("utf-8").strip()  # lone surrogates from the API -> '?'
    if len(value) > max_chars:
        gr.Warning(f"{what} is {len(value):,} characters long; only the first {max_chars:,} are used.")
        value = value[:max_chars].strip()
    return value


_DIGITS = re.compile(r"[0-9]{1,9}")
_MARKDOWN = re.compile(r"([\\`*_\[\]#|~])")


def markdown_literal(value: str) -> str:
    """User text to show inside ``gr.Markdown`` as typed: HTML-escaped, Markdown markup characters
    backslash-escaped (a prompt "**hi**" is shown with its stars, not in bold)."""
    return _MARKDOWN.sub(r"\\\1", html.escape(value))


def integer(value: object, what: str, low: int, high: int) -> int:
    """A whole number in [low, high]; integral floats (what sliders send) are accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(f"{what} must be a number, got {_show(value)}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise refuse(f"{what} must be a finite number, got {_show(value)}.")
    if value != int(value):
        raise refuse(f"{what} must be a whole number, got {_show(value)}.")
    if not low <= value <= high:
        raise refuse(f"{what} must be between {low:,} and {high:,}, got {_show(value)}.")
    return int(value)


def number(value: object, what: str, low: float, high: float) -> float:
    """A finite number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not math.isfinite(value)):   # (ints of any size are finite)
        raise refuse(f"{what} must be a finite number, got {_show(value)}.")
    if not low <= value <= high:
        raise refuse(f"{what} must be in [{low:g}, {high:g}], got {_show(value)}.")
    return float(value)


def indices(value: object, what: str, count: int) -> list[int]:
    """A list of indices into ``count`` things (whole numbers in [0, count - 1]; integral floats and digit strings
    such as "3", which is how gradio's API schema of a CheckboxGroup describes them, are accepted), returned
    sorted without repeats; an empty list is allowed. A string, None or another container is refused."""
    span = f"from 0 to {count - 1:,}" if count else "(there are none)"
    if not isinstance(value, (list, tuple)):
        raise refuse(f"{what} must be a list of indices {span}, e.g. [0, 1]; got {_show(value)}.")
    if len(value) > count:
        raise refuse(f"{what} lists {len(value):,} indices; there are only {count:,} ({span}).")
    out = set()
    for item in value:
        if isinstance(item, str) and _DIGITS.fullmatch(item):
            item = int(item)
        whole = isinstance(item, (int, float)) and not isinstance(item, bool) and \
            (isinstance(item, int) or (math.isfinite(item) and item == int(item)))
        if not whole:
            raise refuse(f"{what} must list whole numbers {span}; got {_show(item)}.")
        if not 0 <= item < count:
            raise refuse(f"{what} must list indices {span}; got {_show(item)}.")
        out.add(int(item))
    return sorted(out)


def choice(value: object, what: str, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise refuse(f"{what} must be one of {', '.join(options)}; got {_show(value)}.")
    return value


@contextlib.contextmanager
def truncation_notice(max_tokens: int, what: str = "text") -> Iterator[None]:
    """Turn the pipeline's TextTruncatedWarning into a toast that says what was kept (``what``: "text",
    or "prompt" for the denoiser's prompt tokens)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TextTruncatedWarning)
        yield
    if any(issubclass(w.category, TextTruncatedWarning) for w in caught):
        truncated(max_tokens, what)


def truncated(max_tokens: int, what: str = "text") -> None:
    """The toast :func:`truncation_notice` shows, for a handler that found the cut itself."""
    gr.Warning(f"The model reads at most {max_tokens} tokens per {what}: longer {what} was cut to its "
               f"first {max_tokens} tokens (the rest is ignored).")


def _as_user_error(err: Exception, where: str) -> gr.Error:
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, (ValueError, TypeError, CheckpointError)):
        return refuse(html.escape(str(err)))
    log.exception("unexpected failure in %s", where)  # the one traceback, in the server log only
    return refuse(f"Something went wrong in {where} ({type(err).__name__}); it was logged on the server. "
                    "Try again, or with other settings.")


def user_facing(fn: Callable) -> Callable:
    """Wrap a handler (function or generator) so every failure becomes a ``gr.Error`` message."""
    where = fn.__name__.replace("_", " ")
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapped_generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise _as_user_error(err, where) from err
        return wrapped_generator

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise _as_user_error(err, where) from err
    return wrapped

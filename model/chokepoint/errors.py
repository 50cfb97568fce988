"""User-facing errors.

Every problem a user can cause (a bad file, a misspelt name, a solver that is missing) is raised as
a :class:`ChokepointError` whose message is one line naming the file, key, row or name at fault.
The CLI prints that line and exits non-zero; only ``--debug`` shows a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


#: The signal that asked this process to stop (set by the command line's handlers): an error
#: raised while a signal unwinds the work (a reader cut off mid-read) is the interrupt, not a
#: failure of its own.
STOP_SIGNAL: list[int] = []


class ChokepointError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class NetworkError(ChokepointError):
    """A flow network that cannot be read or is not a valid supply-chain network."""


class ScenarioError(ChokepointError):
    """A scenario file that cannot be read or does not follow the schema."""


class SolverError(ChokepointError):
    """A solver that is missing or that did not return an optimal solution."""


def read_text(path, what: str, error: type[ChokepointError]) -> str:
    """A UTF-8 text file (BOM optional), or ``error`` naming the file and what it should be."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read: {e}") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``" (did you mean 'X'?)"`` suffix naming the closest choice, or ``""`` if none is close."""
    choices = list(dict.fromkeys(choices))
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""

"""A clinic's own wording of a plan text: plain words with named placeholders in braces,
such as "{clinic_name}: Hi {first_name}, keep sipping water today."

Hand-written on purpose: the text is typed into a web form by one clinic and rendered by the
worker that sends every clinic's texts, so rendering must be plain substitution, linear in the
text. A Jinja template (even sandboxed) can loop, include and recurse; str.format reaches
attributes and items (`{0.__class__}`) and takes format specs (`{x:>999999999}`);
string.Template's `$name` is not what an owner expects. Here one regular expression pass splits
the text into words and placeholders, and a placeholder is one of the names below, nothing else.
A brace is only ever part of a placeholder (no escapes: a text has no use for a literal brace).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from service.domain.careplan import APPOINTMENT_REMINDER, PLAN_KINDS
from service.domain.i18n import N_

MAX_LENGTH = 2000  # characters, checked before anything else
MAX_SEGMENTS = 3  # with the longest realistic values (messaging.rendering.wording_problems)

# What a clinic may word: the plan's texts. Answers to a client's text (urgent and concern
# advice among them), page links and staff alerts always use ours: they carry safety content.
EDITABLE = frozenset(PLAN_KINDS)


@dataclass(frozen=True)
class Placeholder:
    name: str  # as the owner types it, between braces
    key: str  # the message context's value it shows (see messaging/rendering.py)
    meaning: str  # for the editor (marked N_: the editor shows it in its language)


PLACEHOLDERS = {p.name: p for p in (
    Placeholder("first_name", "client_name", N_("the client's first name")),
    Placeholder("clinic_name", "clinic_name", N_("your clinic's name")),
    Placeholder("clinic_phone", "clinic_phone", N_("your clinic's phone number")),
    Placeholder("emergency_number", "emergency_number",
                N_("the emergency number where the client is (911 in the US)")),
    Placeholder("window_end", "window_ends", N_("when the 24-hour window ends, e.g. Thu 4:10 PM")),
    Placeholder("appointment", "appointment",
                N_("the booked appointment, e.g. Thu Oct 1, 4:10 PM")),
    Placeholder("link", "page_url", N_("the client's own aftercare page")),
)}
_ONLY_FOR = {"appointment": APPOINTMENT_REMINDER}  # the one kind whose context has its value

# One pass: template code ("{{", "{%", "{#"), a placeholder (whatever is between two braces),
# or a brace on its own. Each alternative stops at the next brace: linear in the text.
_TOKEN = re.compile(r"\{[{%#]|\{([^{}]*)\}|[{}]")
_JINJA_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class Problem(str):
    """One reason a text cannot be saved, in English (what str() gives: logs, tests), keeping its
    words (marked N_, with %(name)s placeholders) and values so that a page can say it in its own
    language: gettext(problem.words, **problem.values), numbers written the page's way."""

    words: str
    values: dict

    def __new__(cls, words: str, **values):
        english = {k: f"{v:,}" if isinstance(v, int) else v for k, v in values.items()}
        problem = super().__new__(cls, words % english if values else words)  # as gettext does
        problem.words, problem.values = words, values
        return problem


class WordingError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def allowed(kind: str) -> list[Placeholder]:
    """The placeholders a text of this kind may use."""
    return [p for p in PLACEHOLDERS.values() if _ONLY_FOR.get(p.name, kind) == kind]


def problems(text: str, kind: str) -> list[Problem]:
    """Everything wrong with the text's form, each in plain words: [] when it can be rendered."""
    return _scan(text, kind)[1]


def render(text: str, kind: str, context: Mapping[str, object]) -> str:
    """The text with each placeholder's value from the message context (a missing one shows as
    nothing). Raises WordingError for a text that is not a wording."""
    pieces, found = _scan(text, kind)
    if found:
        raise WordingError(found)
    return "".join(piece if isinstance(piece, str) else _value(context.get(piece.key))
                   for piece in pieces).strip()


def _value(value: object) -> str:
    return "" if value is None else str(value)


def _scan(text: str, kind: str) -> tuple[list[str | Placeholder], list[Problem]]:
    if len(text) > MAX_LENGTH:
        return [], [Problem(N_("is %(length)s characters long; a text may have at most %(max)s"),
                            length=len(text), max=MAX_LENGTH)]
    names = {p.name: p for p in allowed(kind)}
    pieces: list[str | Placeholder] = []
    found: list[Problem] = []
    code = lone_brace = False
    start = 0
    for token in _TOKEN.finditer(text):
        pieces.append(text[start:token.start()])
        start = token.end()
        name = token[1]
        if name in names:
            pieces.append(names[name])
        elif name is not None:
            found.append(Problem(N_("%(placeholder)s is not a placeholder here: use %(names)s"),
                                 placeholder=token[0],
                                 names=", ".join(f"{{{n}}}" for n in names)))
        elif token[0] in "{}":
            lone_brace = True
        else:
            code = True
    pieces.append(text[start:])
    if code:  # its braces are the code's: no separate word about them
        found.insert(0, _code_problem(text))
    elif lone_brace:
        found.append(Problem(N_("has a brace without its pair: a placeholder is a name between "
                                "{ and }, such as {first_name}")))
    return pieces, list(dict.fromkeys(found))


def _code_problem(text: str) -> Problem:
    """Template code, with the placeholder to write instead of a Jinja variable if there is one."""
    by_key = {p.key: p.name for p in PLACEHOLDERS.values()}
    for variable in _JINJA_VARIABLE.finditer(text):
        if variable[1] in by_key:
            return Problem(N_("has template code: write %(placeholder)s, not %(code)s (a text is "
                              "plain words with placeholders)"),
                           placeholder=f"{{{by_key[variable[1]]}}}", code=variable[0])
    return Problem(N_("has template code ({{ }}, {% %} or {# #}): a text is plain words with "
                      "placeholders; write {first_name}, not {{ client_name }}"))

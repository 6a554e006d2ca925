"""Read the figures of a staff page as a person sees them, and refuse impossible ones.

:func:`tables` parses a page with the standard library's ``html.parser`` (no BeautifulSoup) into
its tables: each row with its attributes and its cells' visible text and classes.
:func:`assert_possible` fails on anything a page must never show: ``nan``, ``inf``, ``None``, an
ISO timestamp or a time with microseconds, an unsigned percentage over 100 or a negative one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

#: elements whose text nobody reads on the page
HIDDEN = {"svg", "script", "style", "head", "title", "textarea"}


@dataclass
class Cell:
    text: str
    classes: list[str]
    title: str = ""


@dataclass
class Row:
    attrs: dict[str, str]
    cells: list[Cell] = field(default_factory=list)

    def by_class(self) -> dict[str, str]:
        """``{class: text}`` of the cells (each class of a cell names it)."""
        return {c: cell.text for cell in self.cells for c in cell.classes}

    def texts(self) -> list[str]:
        return [cell.text for cell in self.cells]


@dataclass
class Table:
    attrs: dict[str, str]
    head: list[Cell] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self.stack: list[Table] = []
        self.text: list[str] = []  # every visible text chunk
        self.titles: list[str] = []
        self.hidden = 0
        self.cell: Cell | None = None
        self.in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in HIDDEN:
            self.hidden += 1
        if self.hidden:
            return
        if a.get("title"):
            self.titles.append(a["title"])
        if tag == "table":
            self.stack.append(Table(a))
            self.tables.append(self.stack[-1])
        elif tag == "thead" and self.stack:
            self.in_head = True
        elif tag == "tr" and self.stack and not self.in_head:
            self.stack[-1].rows.append(Row(a))
        elif tag in ("td", "th") and self.stack:
            self.cell = Cell("", a.get("class", "").split(), a.get("title", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
            return
        if self.hidden:
            return
        if tag == "table" and self.stack:
            self.stack.pop()
        elif tag == "thead":
            self.in_head = False
        elif tag in ("td", "th") and self.cell is not None and self.stack:
            self.cell.text = " ".join(self.cell.text.split())
            table = self.stack[-1]
            if self.in_head or not table.rows:
                table.head.append(self.cell)
            else:
                table.rows[-1].cells.append(self.cell)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.text.append(data)
        if self.cell is not None:
            self.cell.text += data


def parse(html: str) -> _Parser:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser


def tables(html: str) -> dict[str, Table]:
    """The page's tables that have an ``id``, by id."""
    return {t.attrs["id"]: t for t in parse(html).tables if t.attrs.get("id")}


def visible_text(html: str) -> str:
    """What a reader sees: the text outside SVGs, scripts and styles, and the tooltips."""
    p = parse(html)
    return " ".join(" ".join(p.text).split()) + " " + " ".join(p.titles)


IMPOSSIBLE = [
    (re.compile(r"\b(?:nan|NaN|inf|Infinity|None|null|undefined)\b"), "no figure"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d"), "a raw ISO timestamp"),
    (re.compile(r"\d\d:\d\d:\d\d\.\d+"), "a time with fractions of a second"),
    (re.compile(r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?[+-]\d\d:\d\d"), "a UTC offset"),
]
PERCENT = re.compile(r"(?<![\w.,])([+\-\u2212]?)(\d[\d,]*(?:\.\d+)?)\s?%")


def impossible_figures(html: str, signed: bool = False) -> list[str]:
    """Every figure a reader must never see on ``html``, with the reason. A percentage is a share
    (0 to 100) unless ``signed`` allows changes written with their sign ("+150.0 %")."""
    text = visible_text(html)
    found = [f"{why}: {m.group(0)!r}" for pattern, why in IMPOSSIBLE for m in pattern.finditer(text)]
    # the SVGs' own text (axis labels) and metadata too: no timestamp anywhere in the page
    found += [f"a timestamp in the page source: {m.group(0)!r}" for m in IMPOSSIBLE[2][0].finditer(html)]
    for m in PERCENT.finditer(text):
        sign, value = m.group(1), float(m.group(2).replace(",", ""))
        if sign and signed:
            continue
        if sign in ("-", "\u2212") or value > 100:
            found.append(f"not a share: {m.group(0)!r}")
    return found


def assert_possible(html: str, signed: bool = False) -> None:
    found = impossible_figures(html, signed)
    assert not found, "impossible figures on the page:\n" + "\n".join(found)


def percent(share: float, digits: int = 1, space: bool = False) -> str:
    """A share as the staff pages write it: ``0.123`` -> "12.3%" (or "12.3 %")."""
    return f"{100 * share:.{digits}f}{' ' if space else ''}%"

"""CSV files as users have them: the separator sniffed (or given), a UTF-8 byte-order mark, quoted headers,
decimal commas in ``;`` files, and an error that names the problem when a file cannot be read.

pandas does the parsing; this module only looks at the start of the file to choose the dialect, and turns
pandas' and Python's errors into one :class:`CsvError` that says what to do.
"""

from __future__ import annotations

import csv
import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SEPARATORS = (",", ";", "\t", "|")
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 50
DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
DECIMAL_POINT = re.compile(r"^[+-]?\d*\.\d+$")
ZIP_MAGIC = b"PK\x03\x04"


class CsvError(ValueError):
    """A CSV file that cannot be read, with what to check or pass."""


@dataclass(frozen=True, slots=True)
class CsvDialect:
    """How a file is read: its separator, its decimal mark, and whether the separator was sniffed."""

    sep: str
    decimal: str
    sniffed: bool

    def describe(self) -> str:
        how = "sniffed" if self.sniffed else "given"
        return f"separator {SEPARATOR_NAMES.get(self.sep, repr(self.sep))} ({how}), decimal mark {self.decimal!r}"


def parse_separator(text: str | None) -> str | None:
    """A ``--sep`` value as one character (``\\t`` and ``tab`` mean a tab); None or empty: sniff it."""
    if not text:
        return None
    sep = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(text, text)
    if len(sep) != 1 or sep in "\"'\r\n":
        raise CsvError(f"--sep must be one character such as ',', ';', '\\t' or '|', got {text!r}")
    return sep


def sniff_dialect(path: str | Path, sep: str | None = None) -> CsvDialect:
    """The separator (unless given) and decimal mark of a CSV file, from its first lines.

    :param sep: the separator when the caller knows it; None: the one of ``,`` ``;`` tab ``|`` that splits
        the header into the most columns and the rows into as many.
    :raises CsvError: for a missing, empty, binary or non-UTF-8 file.
    """
    lines = _sample_lines(Path(path))
    chosen = parse_separator(sep) or _sniff_separator(lines)
    return CsvDialect(sep=chosen, decimal=_decimal_mark(lines, chosen), sniffed=sep is None)


def read_csv_table(path: str | Path, sep: str | None = None, **options: Any) -> pd.DataFrame:
    """Read a CSV file (``.gz`` too) into a DataFrame, whatever its separator, BOM or decimal mark.

    :param sep: the separator; None sniffs it (see :func:`sniff_dialect`).
    :param options: passed on to :func:`pandas.read_csv` (``usecols``, ``dtype``, ...).
    :raises CsvError: naming the file, the dialect used and what to change.
    """
    path = Path(path)
    dialect = sniff_dialect(path, sep)
    try:
        frame = pd.read_csv(path, sep=dialect.sep, decimal=dialect.decimal, encoding="utf-8-sig", **options)
    except pd.errors.EmptyDataError:
        raise CsvError(f"{path} has no header row: the file is empty") from None
    except pd.errors.ParserError as error:
        reason = str(error).replace("Error tokenizing data. C error: ", "").strip()
        raise CsvError(f"{path} could not be parsed with {dialect.describe()}: {reason}; "
                       "check the quotes on that line, or pass --sep") from None
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    except ValueError as error:  # e.g. usecols naming a column the file lacks
        raise CsvError(f"{path} (read with {dialect.describe()}): {error}") from None
    frame.columns = [c.strip() if isinstance(c, str) else c for c in frame.columns]
    _check_not_one_column(path, frame, dialect)
    return frame


def _sample_lines(path: Path) -> list[str]:
    """The first non-blank lines of the file, as text."""
    if not path.is_file():
        raise CsvError(f"{path} does not exist or is not a file")
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
            complete = not handle.read(1)
    except (OSError, EOFError) as error:
        raise CsvError(f"{path} could not be read: {error}") from None
    if head.startswith(ZIP_MAGIC):
        raise CsvError(f"{path} is a zip archive (an Excel .xlsx workbook?), not a CSV file; save it as CSV (UTF-8)")
    if b"\x00" in head:
        raise CsvError(f"{path} is not a text file (it holds NUL bytes); save it as CSV (UTF-8)")
    if not complete:  # cut at the last full line; a newline byte never sits inside a UTF-8 character
        head = head[: head.rfind(b"\n") + 1] or head
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    lines = [line for line in text.splitlines() if line.strip()][:SNIFF_LINES]
    if not lines:
        raise CsvError(f"{path} has no header row: the file is empty")
    return lines


def _sniff_separator(lines: list[str]) -> str:
    """The separator that splits the header into the most columns, with the other rows as wide."""
    best, best_key = ",", (0.0, 1)
    for sep in SEPARATORS:
        widths = [len(fields) for fields in csv.reader(lines, delimiter=sep)]
        if widths[0] < 2:
            continue
        key = (sum(w == widths[0] for w in widths) / len(widths), widths[0])
        if key > best_key:
            best, best_key = sep, key
    return best


def _decimal_mark(lines: list[str], sep: str) -> str:
    """``,`` where a non-comma file writes more numbers as ``1,5`` than as ``1.5``; else ``.``."""
    if sep == ",":
        return "."
    fields = [f.strip() for fields in csv.reader(lines[1:], delimiter=sep) for f in fields]
    commas = sum(bool(DECIMAL_COMMA.match(f)) for f in fields)
    points = sum(bool(DECIMAL_POINT.match(f)) for f in fields)
    return "," if commas > points else "."


def _check_not_one_column(path: Path, frame: pd.DataFrame, dialect: CsvDialect) -> None:
    """A table read as one column whose header holds another separator was read with the wrong one."""
    if frame.shape[1] != 1:
        return
    header = str(frame.columns[0])
    other = next((s for s in SEPARATORS if s != dialect.sep and s in header), None)
    if other is not None:
        raise CsvError(f"{path} was read as one column {header[:60]!r} with {dialect.describe()}; "
                       f"its header holds {SEPARATOR_NAMES[other]}s: pass --sep {other!r}")


def _not_utf8(path: Path, error: UnicodeDecodeError) -> CsvError:
    byte = error.object[error.start]
    return CsvError(f"{path} is not UTF-8 text (byte 0x{byte:02x} near offset {error.start}); "
                    "save it as UTF-8 (in Excel: 'CSV UTF-8')")

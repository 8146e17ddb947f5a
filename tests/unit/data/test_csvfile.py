"""CSV files as users have them: sniffed separators, BOM, quoted headers, decimal commas, and clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.csvfile import CsvError, parse_separator, read_csv_table, sniff_dialect

BANK_COLUMNS = [
    "age", "job", "marital", "education", "default", "housing", "loan", "contact", "month", "day_of_week",
    "duration", "campaign", "pdays", "previous", "poutcome", "emp.var.rate", "cons.price.idx", "cons.conf.idx",
    "euribor3m", "nr.employed", "y",
]


def bank_marketing_csv(path: Path, rows: int = 2_000, seed: int = 0) -> Path:
    """A synthetic file shaped like UCI Bank Marketing's bank-additional-full.csv: ``;``-separated, every header
    and every text value in double quotes, numbers bare with decimal points, the outcome ``y`` as "yes"/"no"."""
    rng = np.random.default_rng(seed)
    jobs = ["admin.", "blue-collar", "technician", "services", "management", "retired", "student", "unknown"]
    text = {
        "job": rng.choice(jobs, rows), "marital": rng.choice(["married", "single", "divorced"], rows),
        "education": rng.choice(["basic.4y", "high.school", "university.degree", "unknown"], rows),
        "default": rng.choice(["no", "unknown"], rows), "housing": rng.choice(["yes", "no"], rows),
        "loan": rng.choice(["yes", "no"], rows), "contact": rng.choice(["cellular", "telephone"], rows),
        "month": rng.choice(["may", "jun", "jul", "aug", "nov"], rows), "day_of_week": rng.choice(["mon", "tue", "wed", "thu", "fri"],
            rows),
        "poutcome": rng.choice(["nonexistent", "failure", "success"], rows),
    }
    age, duration = rng.integers(18, 90, rows), rng.integers(0, 3_000, rows)
    euribor = rng.choice([4.857, 1.313, 0.634, 4.961], rows)
    margin = -5.2 + 0.002 * duration - 0.4 * euribor + 1.5 * (text["poutcome"] == "success") + 0.6 * (text["contact"] == "cellular")
    y = np.where(rng.random(rows) < 1 / (1 + np.exp(-margin)), "yes", "no")
    lines = [";".join(f'"{c}"' for c in BANK_COLUMNS)]
    for i in range(rows):
        values = [
            str(age[i]), *(f'"{text[c][i]}"' for c in BANK_COLUMNS[1:10]), str(duration[i]), str(rng.integers(1, 10)),
            "999", "0", f'"{text["poutcome"][i]}"', "1.1", "93.994", "-36.4", f"{euribor[i]:.3f}", "5191", f'"{y[i]}"',
        ]
        lines.append(";".join(values))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_bank_marketing_file_is_read_with_its_semicolons_and_quoted_headers(tmp_path: Path) -> None:
    path = bank_marketing_csv(tmp_path / "bank-additional-full.csv", rows=200)
    dialect = sniff_dialect(path)
    assert (dialect.sep, dialect.decimal, dialect.sniffed) == (";", ".", True)
    frame = read_csv_table(path)
    assert list(frame.columns) == BANK_COLUMNS and len(frame) == 200
    assert frame["emp.var.rate"].dtype == np.float64 and frame["age"].dtype == np.int64
    assert set(frame["y"]) <= {"yes", "no"} and frame["job"].str.startswith('"').sum() == 0


def test_a_utf8_bom_does_not_stick_to_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffcustomer_id,amount\nc1,3.5\nc2,4\n".encode())
    frame = read_csv_table(path)
    assert list(frame.columns) == ["customer_id", "amount"] and frame["amount"].tolist() == [3.5, 4.0]


def test_semicolon_files_with_decimal_commas_read_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "european.csv"
    path.write_text('"kunde";"umsatz";"rabatt"\n"a";1234,50;0,1\n"b";7,25;0\n"c";-0,5;0,25\n', encoding="utf-8")
    assert sniff_dialect(path).decimal == ","
    frame = read_csv_table(path)
    assert frame["umsatz"].tolist() == [1234.5, 7.25, -0.5] and frame["rabatt"].dtype == np.float64


def test_tab_and_pipe_separators_are_sniffed_and_a_gzipped_file_too(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("a\tb\tc\n1\t2\t3\n4\t5\t6\n")
    (tmp_path / "p.csv").write_text("a|b\nx|1\ny|2\n")
    with gzip.open(tmp_path / "g.csv.gz", "wt") as handle:
        handle.write("a;b\n1,5;2\n")
    assert read_csv_table(tmp_path / "t.tsv").shape == (2, 3)
    assert read_csv_table(tmp_path / "p.csv")["b"].tolist() == [1, 2]
    assert read_csv_table(tmp_path / "g.csv.gz")["a"].tolist() == [1.5]


def test_commas_inside_quoted_text_do_not_fool_the_sniffer(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('name;note;score\n"Doe, Jane";"a, b, c";1\n"Roe, Rick";"d, e";2\n')
    assert sniff_dialect(path).sep == ";"
    assert read_csv_table(path)["name"].tolist() == ["Doe, Jane", "Roe, Rick"]


def test_a_given_separator_wins_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("a;b\n1;2\n")
    assert sniff_dialect(path, sep=";").sniffed is False
    for wrong in (",", "\\t"):
        with pytest.raises(CsvError, match=r"read as one column 'a;b'.*holds semicolons: pass --sep ';'"):
            read_csv_table(path, sep=wrong)
    (tmp_path / "one.csv").write_text("email\na@x.example\n")
    assert read_csv_table(tmp_path / "one.csv").shape == (1, 1)  # a real one-column file is fine


def test_parse_separator() -> None:
    assert parse_separator("\\t") == parse_separator("tab") == "\t"
    assert parse_separator(None) is None and parse_separator(";") == ";"
    with pytest.raises(CsvError, match="one character"):
        parse_separator(";;")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (b"PK\x03\x04\x14\x00rest-of-a-workbook", r"zip archive \(an Excel \.xlsx workbook\?\)"),
        (b"a,b\x00\x00,c\n", "not a text file"),
        ("name,city\nJos\u00e9,K\u00f6ln\n".encode("latin-1"), r"not UTF-8 text \(byte 0xe9 near offset 13\).*CSV UTF-8"),
        (b'a,b\n1,2\n3,4,5\n', r"separator comma \(sniffed\).*Expected 2 fields in line 3, saw 3.*pass --sep"),
    ],
)
def test_files_that_cannot_be_read_are_named_with_the_problem(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CsvError, match=message):
        read_csv_table(path)


def test_a_missing_file_and_a_missing_column_are_named(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="does not exist"):
        read_csv_table(tmp_path / "nope.csv")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CsvError, match=r"t\.csv \(read with separator comma"):
        read_csv_table(tmp_path / "t.csv", usecols=["a", "zzz"])


def test_the_same_table_reads_alike_in_every_dialect(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["x", "y"], "value": [1.25, -3.5], "n": [1, 2]})
    frame.to_csv(tmp_path / "comma.csv", index=False)
    frame.to_csv(tmp_path / "semi.csv", index=False, sep=";", decimal=",")
    frame.to_csv(tmp_path / "bom.csv", index=False, encoding="utf-8-sig")
    for name in ("comma.csv", "semi.csv", "bom.csv"):
        pd.testing.assert_frame_equal(read_csv_table(tmp_path / name), frame)

"""The warehouse's column descriptions, kept in one file: ``sqlmesh/columns.yaml``.

Each column is described once, in the model that makes it. A model that passes a column on unchanged names its
origin instead, ``{from: model}`` (same column name) or ``{from: model.column}``, and gets the same text. The
models read their descriptions with the ``@column_docs(model)`` macro, so the warehouse's column comments, the
generated docs and ``sqlmesh`` all show them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import yaml

COLUMN_DOCS_PATH = Path(__file__).resolve().parent / "sqlmesh" / "columns.yaml"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class ColumnDocsError(ValueError):
    """``columns.yaml`` is malformed or a reference in it does not resolve."""


def column_docs_digest(path: Path = COLUMN_DOCS_PATH) -> str:
    """A short digest of the file, so that SQLMesh's model cache reloads the descriptions when it changes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def column_descriptions(
    model: str, variables: Callable[[str], object] | None = None, path: Path = COLUMN_DOCS_PATH
) -> dict[str, str]:
    """The description of every column of ``model``, references resolved and ``{variable}`` filled in.

    :param model: the model's table name, for example ``marts_marketing_customer_360``.
    :param variables: looks up a project variable by name (SQLMesh's ``evaluator.var``); None leaves
        ``{variable}`` as written.
    :param path: the YAML file.
    :raises ColumnDocsError: the model is not in the file, a reference does not resolve, or a ``{variable}`` is
        not a project variable.
    """
    resolved = _resolve_all(path.read_text(encoding="utf-8"), str(path))
    if model not in resolved:
        raise ColumnDocsError(f"{path}: no columns for model {model!r}; add a `{model}:` section")
    if variables is None:
        return dict(resolved[model])
    return {column: _fill(text, variables, f"{path}: {model}.{column}") for column, text in resolved[model].items()}


def _fill(text: str, variables: Callable[[str], object], where: str) -> str:
    def value(match: re.Match[str]) -> str:
        found = variables(match.group(1))
        if found is None:
            raise ColumnDocsError(f"{where} names {{{match.group(1)}}}, which is not a project variable")
        return f"{found:g}" if isinstance(found, float) else str(found)

    return _PLACEHOLDER.sub(value, text)


@lru_cache(maxsize=4)
def _resolve_all(text: str, where: str) -> dict[str, dict[str, str]]:
    entries = _parse(text, where)
    return {model: {column: _resolve(entries, model, column, where, ()) for column in columns}
            for model, columns in entries.items()}


def _parse(text: str, where: str) -> dict[str, dict[str, str | dict]]:
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ColumnDocsError(f"{where}: expected `model: {{column: description}}` sections")
    return data


def _resolve(entries: dict, model: str, column: str, where: str, seen: tuple[str, ...]) -> str:
    key = f"{model}.{column}"
    if key in seen:
        raise ColumnDocsError(f"{where}: circular references: {' -> '.join((*seen, key))}")
    entry = entries.get(model, {}).get(column)
    if isinstance(entry, str) and entry.strip():
        return " ".join(entry.split())
    if isinstance(entry, dict) and set(entry) == {"from"} and isinstance(entry["from"], str):
        source_model, _, source_column = entry["from"].partition(".")
        source_column = source_column or column
        if source_column not in entries.get(source_model, {}):
            raise ColumnDocsError(f"{where}: {key} refers to {source_model}.{source_column}, which is not described")
        return _resolve(entries, source_model, source_column, where, (*seen, key))
    raise ColumnDocsError(f"{where}: {key} must be a description or {{from: model[.column]}}, got {entry!r}")

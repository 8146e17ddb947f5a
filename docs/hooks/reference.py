"""mkdocs hook: the Reference pages, generated from the code at build time (never hand-copied).

- ``reference/cli.md``: every ``ame`` command, from the Typer app (``ame.cli.app``);
- ``reference/api.md`` and ``reference/openapi.json``: the decision API, from ``serve.routes.build_api().openapi()``;
- ``reference/events.md`` and ``reference/events.schema.json``: the event envelope and every event type, from the
  pydantic models of ``data/events.py``;
- ``reference/settings.md``: every ``AME_*`` setting, from ``data.settings.Settings``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from typer.cli import get_docs_for_click
from typer.main import get_command

from data.events import EVENT_ADAPTER, EVENT_TYPES, EventBase
from data.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # mkdocs runs from the repository root, but may be called from elsewhere
    sys.path.insert(0, str(ROOT))

GENERATED = "Generated from the code when the site is built; do not edit."


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated reference pages to the site."""
    pages = {
        "reference/cli.md": cli_page(),
        "reference/settings.md": settings_page(),
        "reference/events.md": events_page(),
        "reference/events.schema.json": events_schema_json(),
        "reference/api.md": api_page(),
        "reference/openapi.json": json.dumps(openapi(), indent=2),
    }
    for uri, content in pages.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files


# ---- the command line ---------------------------------------------------------------------------------


def cli_page() -> str:
    """Every command of ``ame``, with its options, as Typer documents them."""
    from ame.cli import app  # lazy: loads torch and stable-baselines3

    command = get_command(app)
    body = get_docs_for_click(obj=command, ctx=click.Context(command, info_name="ame"), name="ame", title="ame")
    body = body.split("\n", 1)[1]  # the page has its own title; Typer's "## `ame demo`" sections stay level 2
    return f"# Command line (`ame`)\n\n!!! note\n    {GENERATED}\n\n{body}\n"


# ---- settings -----------------------------------------------------------------------------------------


def settings_page() -> str:
    """Every field of the settings object, as the ``AME_*`` variable that sets it."""
    prefix = Settings.model_config.get("env_prefix", "")
    rows = ["| variable | type | default | constraints | meaning |", "|---|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "*(empty)*" if default in ("", None) else f"`{default}`"
        rows.append(f"| `{prefix}{name.upper()}` | {_type_name(field.annotation)} | {shown} | {_constraints(field)} | "
                    f"{_cell(field.description or '')} |")
    return (
        f"# Settings\n\n!!! note\n    {GENERATED}\n\n"
        "One typed settings object, `data.settings.Settings`, read lazily from `AME_*` environment variables "
        "(or a `.env` file in the working folder). Settings are passed explicitly into actors and deployments. "
        "Every command also takes `--log URL` (and `--state URL` / `--warehouse URL` where it uses them). "
        "An empty URL setting means the embedded default under `AME_HOME`: `sqlite:///.ame/events.db` for the log, "
        "`sqlite:///.ame/state.db` for the state store and `duckdb:///.ame/warehouse.duckdb` for the warehouse.\n\n"
        + "\n".join(rows) + "\n"
    )


def _constraints(field: Any) -> str:
    names = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "pattern": "matches"}
    parts = []
    for item in field.metadata:
        for attribute, symbol in names.items():
            value = getattr(item, attribute, None)
            if value is not None:
                parts.append(f"{symbol} `{value}`")
    return ", ".join(parts)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation)).replace("|", "or")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# ---- events -------------------------------------------------------------------------------------------


def events_schema_json() -> str:
    return json.dumps(EVENT_ADAPTER.json_schema(), indent=2)


def events_page() -> str:
    """The envelope, then each event type's properties, from the pydantic models."""
    parts = [
        f"# Events\n\n!!! note\n    {GENERATED}\n",
        "Every fact is an event: one envelope, and one typed `properties` model per `event_type`. An event that "
        "fails validation goes to the dead-letter store with its raw bytes and the reason. The whole union as one "
        "JSON Schema: [events.schema.json](events.schema.json).\n",
        "## The envelope\n",
        _fields_table(EventBase.model_json_schema(), skip=frozenset({"properties", "event_type"})),
        "`event_type` names the type (below) and `properties` holds its typed payload; unknown keys are refused, "
        "free-form extras go in `properties.context`.\n",
        "## Event types\n",
        ", ".join(f"[`{name}`](#{name})" for name in sorted(EVENT_TYPES)) + "\n",
    ]
    for name in sorted(EVENT_TYPES):
        schema = EVENT_TYPES[name].model_json_schema()
        properties = _resolve(schema.get("properties", {}).get("properties", {}), schema)
        doc = " ".join((EVENT_TYPES[name].__doc__ or properties.get("description") or "").split())
        parts.append(f"### {name}\n" + (f"\n{doc}\n" if doc else ""))
        parts.append(_fields_table(properties, root=schema) if properties.get("properties") else "No properties.\n")
    return "\n".join(parts)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The schema a ``$ref`` (``#/$defs/X``, ``#/components/schemas/X``) points to; the node itself otherwise."""
    ref = node.get("$ref") or next((a["$ref"] for a in node.get("allOf", []) if "$ref" in a), None)
    if ref is None:
        return node
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _fields_table(schema: dict[str, Any], skip: frozenset[str] = frozenset(), root: dict[str, Any] | None = None) -> str:
    root = schema if root is None else root
    required = set(schema.get("required", []))
    rows = ["| field | type | required | constraints | description |", "|---|---|---|---|---|"]
    for name, spec in schema.get("properties", {}).items():
        if name in skip:
            continue
        rows.append(f"| `{name}` | {_json_type(spec, root)} | {'yes' if name in required else ''} | {_json_constraints(spec)} | "
                    f"{_cell(spec.get('description', ''))} |")
    return "\n".join(rows) + "\n"


def _json_type(spec: dict[str, Any], root: dict[str, Any]) -> str:
    if "anyOf" in spec:
        return " or ".join(_json_type(s, root) for s in spec["anyOf"])
    if "$ref" in spec:
        target = _resolve(spec, root)
        return "one of " + ", ".join(f"`{v}`" for v in target["enum"]) if "enum" in target else target.get("title", "object")
    kind = spec.get("type", "any")
    if kind == "array":
        return f"array of {_json_type(spec.get('items', {}), root)}"
    if spec.get("format") == "date-time":
        return "date-time"
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    return str(kind)


def _json_constraints(spec: dict[str, Any]) -> str:
    keys = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<", "minLength": "length ≥",
            "maxLength": "length ≤", "pattern": "matches", "default": "default"}
    found = [f"{symbol} `{spec[key]}`" for key, symbol in keys.items() if key in spec]
    for option in spec.get("anyOf", []):
        found += [f"{symbol} `{option[key]}`" for key, symbol in keys.items() if key in option and key != "default"]
    return _cell(", ".join(found)).replace("`|`", "`\\|`")


# ---- the decision API ---------------------------------------------------------------------------------


def openapi() -> dict[str, Any]:
    from serve.routes import build_api  # lazy: loads FastAPI

    return build_api().openapi()


def api_page() -> str:
    """Every route with its request and response models, and the schemas they use."""
    document = openapi()
    parts = [
        f"# Decision API\n\n!!! note\n    {GENERATED}\n",
        f"{document['info']['title']}, version {document['info']['version']}. The OpenAPI document: "
        "[openapi.json](openapi.json); a running server also serves it at `/openapi.json`, with an explorer at `/docs`. "
        "Requests carry an API key as `Authorization: Bearer <key>` or `X-API-Key`.\n",
        "## Routes\n",
        "| method | path | operation | request body | responses |",
        "|---|---|---|---|---|",
    ]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            responses = ", ".join(f"{code} {r.get('description', '')}".strip() for code, r in op.get("responses", {}).items())
            parts.append(f"| `{method.upper()}` | `{path}` | {op.get('summary', '')} | {_schema_link(body)} | {_cell(responses)} |")
    parts.append("\n## Schemas\n")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        parts.append(f"### {name}\n")
        if schema.get("description"):
            parts.append(_cell(schema["description"]) + "\n")
        parts.append(_fields_table(schema, root=document) if schema.get("properties") else "No fields.\n")
    return "\n".join(parts)


def _schema_link(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if not ref:
        return ""
    name = ref.rsplit("/", 1)[1]
    return f"[{name}](#{name.lower()})"

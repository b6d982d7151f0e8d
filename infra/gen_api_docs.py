"""Write docs/api.md from the OpenAPI document that the web process serves.

    .venv/bin/python infra/gen_api_docs.py            # rewrite docs/api.md
    .venv/bin/python infra/gen_api_docs.py --check    # exit 1 if docs/api.md is stale
    .venv/bin/python infra/gen_api_docs.py --stdout   # print it instead

The document is ``app.web.openapi.document()``, the same data as ``GET /api/v1/openapi.json``:
each /api/v1 resource module in app/web/api/ holds its paths beside its routes, and
app/web/openapi.py the shared schemas, the public paths and the assembly.
The output has one section per path and method (summary, role, parameters, request body,
responses) and one per schema. It is deterministic, so tests/unit/web/test_api_docs.py can check
that docs/api.md is up to date.
"""

import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"
COMMAND = ".venv/bin/python infra/gen_api_docs.py"

METHODS = ("get", "post", "put", "patch", "delete")
CONSTRAINTS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("minLength", "at least {} character(s)"),
    ("maxLength", "at most {} character(s)"),
    ("minItems", "at least {} item(s)"),
    ("uniqueItems", "unique items"),
    ("pattern", "matches `{}`"),
    ("format", "{}"),
)


def load_document() -> dict:
    """The OpenAPI document. Importing the app reads its settings, and on the embedded default
    creates files under BRISA_VAR_DIR: point that at a throwaway folder unless it is set."""
    sys.path.insert(0, str(ROOT))
    if "BRISA_VAR_DIR" in os.environ or "app.config" in sys.modules:
        from app.web.openapi import document

        return document()
    with tempfile.TemporaryDirectory(prefix="brisa-apidoc-") as var_dir:
        os.environ["BRISA_VAR_DIR"] = var_dir
        try:
            from app.web.openapi import document

            return document()
        finally:
            del os.environ["BRISA_VAR_DIR"]


# Schemas as text ------------------------------------------------------------------------


def ref_name(schema: dict) -> str | None:
    target = schema.get("$ref", "")
    return target.rsplit("/", 1)[-1] if target else None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def link(name: str) -> str:
    return f"[`{name}`](#{slug(name)})"


def type_of(schema: dict) -> str:
    """A short name for a schema's type: `string`, `array of Run`, `integer or null`."""
    if not schema or set(schema) <= {"description"}:
        return "any JSON"
    name = ref_name(schema)
    if name:
        return link(name)
    if "anyOf" in schema:
        return " or ".join(type_of(option) for option in schema["anyOf"])
    if "const" in schema:
        return f'`"{schema["const"]}"`' if isinstance(schema["const"], str) else schema["const"]
    kind = schema.get("type", "any JSON")
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return f"object of {type_of(extra)}"
        return "object"
    return kind


def notes_of(schema: dict) -> str:
    """Description, default and constraints of a schema, as one cell."""
    parts = []
    if schema.get("description") and set(schema) != {"description"}:
        parts.append(schema["description"])
    for option in schema.get("anyOf", []):
        if option.get("description") and option.get("type") != "null":
            parts.append(option["description"])
    constrained = [schema] + [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    for part in constrained:
        for key, template in CONSTRAINTS:
            if key in part and part[key] is not False:
                value = "" if part[key] is True else part[key]
                parts.append(template.format(value).strip())
        if "default" in part:
            parts.append(f"default `{part['default']}`")
    return "; ".join(cell(p) for p in parts)


def prose(text) -> str:
    """Free text for Markdown: angle brackets would be read as HTML tags."""
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


def cell(text) -> str:
    return prose(text).replace("|", "\\|").replace("\n", " ")


def fields_table(schema: dict) -> list[str]:
    """The properties of an object schema as a table, or one line for anything else."""
    properties = schema.get("properties")
    if not properties:
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            return ["Any JSON object."]
        return [f"{type_of(schema)}."]
    lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    lines += field_rows(schema, "")
    if schema.get("additionalProperties") is False:
        lines.append("")
        lines.append("No other fields.")
    return lines


def field_rows(schema: dict, prefix: str) -> list[str]:
    """One row per property; an inline object's own properties follow as `outer.inner`."""
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        needed = "yes" if name in required else ""
        rows.append(f"| `{prefix}{name}` | {type_of(prop)} | {needed} | {notes_of(prop)} |")
        if prop.get("type") == "object" and prop.get("properties"):
            rows += field_rows(prop, f"{prefix}{name}.")
    return rows


# Operations -----------------------------------------------------------------------------


def operations(document: dict) -> list:
    """(tag, path, method, operation), grouped by tag in order of first appearance, then in
    the document's order."""
    found = []
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                found.append((op.get("tags", ["other"])[0], path, method, op))
    tags = list(dict.fromkeys(tag for tag, *_ in found))
    return sorted(found, key=lambda entry: tags.index(entry[0]))


def heading_of(path: str, method: str) -> str:
    return f"{method.upper()} {path}"


def role_of(op: dict) -> str:
    if op.get("security") == []:
        return "none (no token)"
    match = re.search(r"Needs the (\w+) role", op.get("description", ""))
    return match.group(1) if match else "any token"


def parameters_section(op: dict) -> list[str]:
    params = op.get("parameters", [])
    if not params:
        return []
    lines = [
        "**Parameters**",
        "",
        "| name | in | type | required | description |",
        "|---|---|---|---|---|",
    ]
    for param in params:
        schema = param.get("schema", {})
        notes = "; ".join(x for x in (cell(param.get("description", "")), notes_of(schema)) if x)
        if "example" in param:
            notes += f" (e.g. `{param['example']}`)"
        needed = "yes" if param.get("required") else ""
        lines.append(
            f"| `{param['name']}` | {param['in']} | {type_of(schema)} | {needed} | {notes} |"
        )
    return lines + [""]


def body_section(op: dict, schemas: dict) -> list[str]:
    request = op.get("requestBody")
    if not request:
        return []
    schema = request["content"]["application/json"]["schema"]
    needed = "required" if request.get("required") else "optional"
    name = ref_name(schema)
    about = prose(request.get("description", "")).rstrip(".")
    lines = [f"**Request body** ({needed}, `application/json`): {about}."]
    lines.append("")
    if name:
        lines.append(f"Schema {link(name)}:")
        lines.append("")
        lines += fields_table(schemas[name])
    else:
        lines.append(f"Schema: {type_of(schema)}.")
    return lines + [""]


def responses_section(op: dict, document: dict) -> list[str]:
    shared = document["components"]["responses"]
    lines = ["**Responses**", "", "| status | meaning | body |", "|---|---|---|"]
    for status, answer in op["responses"].items():
        name = ref_name(answer)
        if name:
            answer = shared[name]
        content = answer.get("content", {})
        if "application/json" in content:
            shown = type_of(content["application/json"]["schema"])
        elif content:
            shown = "`" + next(iter(content)) + "`"
        else:
            shown = "none"
        lines.append(f"| {status} | {cell(answer['description'])} | {shown} |")
    return lines + [""]


def render(document: dict) -> str:
    schemas = document["components"]["schemas"]
    ops = operations(document)
    info = document["info"]
    out = [
        "# HTTP API reference",
        "",
        "<!-- Generated from the OpenAPI document by infra/gen_api_docs.py: do not edit. -->",
        "",
        f"Generated from the OpenAPI {document['openapi']} document that the web process serves "
        "at `GET /api/v1/openapi.json` (sources: each resource's paths beside its routes in "
        "`app/web/api/`, the shared schemas in `app/web/openapi.py`). Do not edit this file: "
        f"change the document, then run `{COMMAND}`. "
        "`tests/unit/web/test_api_docs.py` fails when this file is stale.",
        "",
        prose(info.get("description", "")),
        "",
        "Roles, lowest first: "
        + document["components"]["securitySchemes"]["bearerAuth"]["description"].split(": ", 1)[-1]
        + ". A role can do everything the roles below it can. Every operation that needs a "
        "token can also answer 401 (no or bad token), 403 (role too low, for operator and "
        "admin) and 503 (the database is down; see `Retry-After`). Every error body is the "
        f"one {link('Error')} schema.",
        "",
        "For a walk-through with real requests and answers, see "
        "[getting-started.md](getting-started.md).",
        "",
        "## Contents",
        "",
        "| method and path | summary | role |",
        "|---|---|---|",
    ]
    for _tag, path, method, op in ops:
        anchor = slug(heading_of(path, method))
        out.append(
            f"| [`{method.upper()} {path}`](#{anchor}) | {cell(op['summary'])} | {role_of(op)} |"
        )
    out.append("")
    current_tag = None
    for tag, path, method, op in ops:
        if tag != current_tag:
            out += [f"## Endpoints: {tag}", ""]
            current_tag = tag
        out += [f"### {heading_of(path, method)}", ""]
        out += [f"{prose(op['summary'])}.", "", f"**Role:** {role_of(op)}.", ""]
        out += parameters_section(op)
        out += body_section(op, schemas)
        out += responses_section(op, document)
    out += ["## Schemas", ""]
    for name, schema in schemas.items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [prose(schema["description"]), ""]
        out += fields_table(schema) + [""]
    while out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    text = render(load_document())
    if "--stdout" in argv:
        sys.stdout.write(text)
        return 0
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"docs/api.md is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

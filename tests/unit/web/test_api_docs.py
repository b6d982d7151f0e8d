"""docs/api.md is generated from the OpenAPI document: it must match what the generator
writes now, so the API reference never drifts from the API."""

import importlib.util
import re
from pathlib import Path

from app.web.openapi import document

ROOT = Path(__file__).resolve().parents[3]
GENERATOR = ROOT / "infra" / "gen_api_docs.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_api_docs", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_up_to_date():
    generator = load_generator()
    expected = generator.render(document())
    actual = (ROOT / "docs" / "api.md").read_text()
    assert actual == expected, (
        f"docs/api.md is stale (the OpenAPI document changed): run `{generator.COMMAND}` "
        "and commit docs/api.md"
    )


def test_every_operation_has_a_section():
    generator = load_generator()
    doc = document()
    text = generator.render(doc)
    for path, item in doc["paths"].items():
        for method in item:
            assert f"\n### {method.upper()} {path}\n" in text


def test_links_point_at_headings():
    """Every in-page link has a heading with that anchor (GitHub's slugs)."""
    generator = load_generator()
    text = generator.render(document())
    headings = {
        generator.slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")
    }
    anchors = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert anchors and anchors <= headings, sorted(anchors - headings)
    assert len(headings) == len([line for line in text.splitlines() if line.startswith("#")])

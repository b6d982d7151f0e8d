"""app/domain/runtime_specs.py: templates and the deploy-time check of a JSON spec."""

import json

import pytest

from app.domain import runtime_specs
from app.domain.runtime_specs import TemplateError

SCOPE = {
    "conf": {"id": 7, "name": "ada", "items": [1, 2], "nested": {"ok": True}},
    "args": {"limit": 10},
    "upstream": {"extract.v2": {"rows": [{"id": 1}, {"id": 2}]}, "count": 3},
    "context": {"run_id": 42, "task_id": "load"},
    "secrets": {"api.token": "s3cret"},
}


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("{{ conf.id }}", 7),
        ("{{conf.items}}", [1, 2]),
        ("{{ conf }}", SCOPE["conf"]),
        ("{{ conf.nested.ok }}", True),
        ("{{ args.limit }}", 10),
        ("{{ upstream.extract.v2.rows.1.id }}", 2),
        ("{{ upstream.count }}", 3),
        ("{{ context.run_id }}", 42),
        ("{{ secrets.api.token }}", "s3cret"),
        ("/users/{{ conf.id }}?n={{ conf.name }}", "/users/7?n=ada"),
        ("items={{ conf.items }}", "items=[1, 2]"),
        ("no templates here", "no templates here"),
        ("{{ conf.id }}-{{ conf.id }}", "7-7"),
    ],
)
def test_render_keeps_the_type_of_a_whole_template_and_interpolates_text(template, value):
    assert runtime_specs.render(template, SCOPE) == value


def test_render_walks_objects_and_lists_leaving_other_values_alone():
    body = {"id": "{{ conf.id }}", "tags": ["{{ conf.name }}", 5, None], "n": 1.5}
    assert runtime_specs.render(body, SCOPE) == {"id": 7, "tags": ["ada", 5, None], "n": 1.5}


def test_interpolate_always_gives_text():
    assert runtime_specs.interpolate("{{ conf.id }}", SCOPE) == "7"
    assert runtime_specs.interpolate("{{ conf.nested }}", SCOPE) == '{"ok": true}'


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ conf.missing }}", "template {{ conf.missing }}: conf has no 'missing'"),
        ("{{ conf.items.5 }}", "template {{ conf.items.5 }}: conf.items has no '5'"),
        ("{{ conf.id.x }}", "template {{ conf.id.x }}: conf.id has no 'x'"),
        ("/a/{{ upstream.nope.rows }}", "upstream has no 'nope'"),
        ("{{ secrets.other }}", "secrets has no 'other'"),
    ],
)
def test_a_missing_path_fails_with_a_clear_message(template, message):
    with pytest.raises(TemplateError) as caught:
        runtime_specs.render(template, SCOPE)
    assert message in str(caught.value)


def test_a_null_conf_has_no_fields():
    with pytest.raises(TemplateError, match="conf has no 'id'"):
        runtime_specs.render("{{ conf.id }}", {**SCOPE, "conf": None})


def spec_problems(runtime, spec, secrets=()):
    source = spec if isinstance(spec, str) else json.dumps(spec)
    return runtime_specs.spec_problems(runtime, source, list(secrets))


@pytest.mark.parametrize(
    ("runtime", "spec", "secrets"),
    [
        ("http", {"url": "https://example.com/x"}, []),
        ("http", {"url": "{{ secrets.base }}/x", "method": "post"}, ["base"]),
        (
            "http",
            {
                "method": "POST",
                "url": "/users/{{ conf.id }}",
                "connection": "api",
                "headers": {"Authorization": "Bearer {{ secrets.token }}"},
                "body": {"ids": "{{ upstream.extract.ids }}", "n": 1},
                "timeout": 2.5,
            },
            ["api", "token"],
        ),
        ("http", {"connection": "api"}, ["api"]),
        ("sql", {"connection": "db", "query": "select 1"}, ["db"]),
        (
            "sql",
            {"connection": "db", "query": "select %(id)s", "params": {"id": "{{ conf.id }}"}},
            ["db"],
        ),
        ("sql", {"connection": "db", "query": "select %s", "params": ["{{ args.x }}"]}, ["db"]),
        ("shell", {"command": "cat"}, []),
        ("shell", {"command": "printf '%s' hi", "shell": False}, []),
    ],
)
def test_valid_specs_have_no_problems(runtime, spec, secrets):
    assert spec_problems(runtime, spec, secrets) == []


@pytest.mark.parametrize(
    ("runtime", "spec", "fragments"),
    [
        ("http", "{not json", ["not valid JSON"]),
        ("sql", "[1, 2]", ["must be a JSON object for the sql runtime"]),
        ("http", {}, ["url: required"]),
        (
            "http",
            {"url": "ftp://x", "method": "TRACE", "headers": {"a": 1}, "timeout": 0, "x": 1},
            [
                "x: unknown field",
                "method: must be one of",
                "url: must start with http://",
                "headers: must be an object of string values",
                "timeout: must be a number",
            ],
        ),
        ("http", {"url": "/x", "connection": "api"}, ["'api' must be listed in the function's"]),
        (
            "http",
            {"url": "https://x/{{ nope.a }}", "body": {"k": "{{ conf.a b }}"}},
            ["url: {{ nope.a }} must start with one of", "body: {{ conf.a b }} is not a dotted"],
        ),
        (
            "http",
            {"url": "https://x", "headers": {"A": "{{ secrets.token }}"}},
            ["headers: {{ secrets.token }} names a secret the function does not list"],
        ),
        ("http", {"url": "https://x", "body": "{{ secrets }}"}, ["body: {{ secrets }} must name"]),
        (
            "sql",
            {"query": " ", "params": "{{ conf }}"},
            ["connection: required", "query: required", "params: must be an object"],
        ),
        (
            "sql",
            {"connection": "db", "query": "select * from t where id = {{ conf.id }}"},
            ["query: templates are not rendered in SQL"],
        ),
        ("sql", {"connection": "db", "query": "select 1", "oops": 1}, ["oops: unknown field"]),
        ("shell", {"shell": "yes"}, ["command: required", "shell: must be true or false"]),
        ("shell", {"command": "echo 'unclosed", "shell": False}, ["cannot be split"]),
    ],
)
def test_every_problem_is_reported(runtime, spec, fragments):
    problems = spec_problems(runtime, spec, ["db"])
    for fragment in fragments:
        assert any(fragment in problem for problem in problems), (fragment, problems)
    assert len(problems) == len(fragments), problems

"""The web UI: server-rendered pages over the core, plus small JSON endpoints under /ui/api
that the pages poll to update themselves in place.

Every route needs a signed-in session (see ui_auth): pages redirect to /login, the JSON
endpoints answer 401. Every POST needs the session's CSRF token. A change answers JSON to a
fetch() (``Accept: application/json``) and otherwise redirects back with a flash message.
"""

import json
import logging
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from app.domain import strict_json
from app.domain.errors import BrisaError, Invalid, Unauthorized
from app.engine import audit, auth, dags, functions, runs, serialize
from app.store.models import DagVersion, Function, FunctionVersion
from app.store.transitions import RUN_FINISHED, TASK_FINISHED
from app.web import ui_auth, ui_data
from app.web.api.common import int_arg

log = logging.getLogger(__name__)

ui = Blueprint("ui", __name__)

PUBLIC_ENDPOINTS = {"ui.login"}
RUN_STATES = ("queued", "running", "success", "failed", "cancelled")


# Sign-in, CSRF, errors --------------------------------------------------------------------


@ui.before_request
def require_sign_in():
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.method == "POST":
            ui_auth.check_csrf()
        return None
    g.role = ui_auth.current_role()
    if g.role is None:
        ui_auth.sign_out()
        if request.path.startswith("/ui/api/"):
            return jsonify({"error": {"code": "unauthorized", "message": "sign in"}}), 401
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("ui.login", next=target))
    if request.method == "POST":
        ui_auth.check_csrf()  # a forged POST changes nothing
    return None


@ui.after_request
def audit_changes(response):
    """Every accepted POST is recorded (sign-in and sign-out excepted)."""
    if request.method == "POST" and response.status_code < 400 and g.get("role"):
        tid = session.get("tid")
        actor = "ui: " + (f"token {tid}" if tid is not None else "BRISA_ADMIN_TOKEN")
        rule = request.url_rule.rule if request.url_rule else request.path
        audit.record(actor, f"POST {rule}", request.path, response.status_code)
    return response


@ui.app_context_processor
def template_helpers():
    role = g.get("role")
    return {
        "role": role,
        "can": lambda needed: (
            role is not None and auth.ROLES.index(role) >= auth.ROLES.index(needed)
        ),
        "csrf_token": ui_auth.csrf_token,
        "run_states": RUN_STATES,
    }


@ui.app_template_filter("pretty_json")
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def needs(role: str) -> None:
    auth.require(g.role, role)


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return request.path.startswith("/ui/api/") or best == "application/json"


def back(fallback: str) -> str:
    return ui_auth.safe_next(request.form.get("next")) or fallback


def _same_site_referrer() -> str | None:
    """The page the failed form was on, as a path of this site; None for another site's."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return None
    path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return ui_auth.safe_next(path)


def done(message: str, fallback: str, **data):
    """The answer to a change that worked: JSON for fetch(), else flash and redirect."""
    if wants_json():
        return jsonify({"ok": True, "message": message, **data})
    flash(message, "success")
    return redirect(back(fallback), code=303)


@ui.errorhandler(BrisaError)
def brisa_error(exc: BrisaError):
    """The core refused: show its message, never a stack trace."""
    if wants_json():
        return jsonify(exc.to_dict()), exc.status
    if request.method == "POST":
        flash(exc.message, "error")
        return redirect(back(_same_site_referrer() or url_for("ui.dags_page")), code=303)
    return render_template("error.html", status=exc.status, message=exc.message), exc.status


@ui.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    if wants_json():
        return jsonify({"error": {"code": exc.name, "message": exc.description}}), exc.code
    return render_template("error.html", status=exc.code, message=exc.description), exc.code


@ui.errorhandler(Exception)
def unexpected(exc: Exception):
    log.exception("unhandled error in the UI")
    message = "Something went wrong on the server; the error is in its log."
    if wants_json():
        return jsonify({"error": {"code": "internal_error", "message": message}}), 500
    return render_template("error.html", status=500, message=message), 500


@ui.route("/login", methods=["GET", "POST"])
def login():
    target = ui_auth.safe_next(request.values.get("next")) or url_for("ui.dags_page")
    error = None
    if request.method == "POST":
        try:
            ui_auth.sign_in(request.form.get("token", ""))
            return redirect(target, code=303)
        except Unauthorized as exc:
            error = f"That token does not work: {exc.message}."
    status = 401 if error else 200
    return render_template("login.html", next=target, error=error, insecure=_insecure()), status


def _insecure() -> bool:
    """True when the cookie is Secure but this request came over plain http from afar: the
    browser would drop the session cookie, so the login page says why."""
    secure = current_app.config.get("SESSION_COOKIE_SECURE")
    proto = request.headers.get("X-Forwarded-Proto", request.scheme)
    local = request.host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")
    return bool(secure) and proto != "https" and not local


@ui.post("/logout")
def logout():
    ui_auth.sign_out()
    flash("Signed out.", "success")
    return redirect(url_for("ui.login"), code=303)


# DAGs -------------------------------------------------------------------------------------


@ui.get("/")
def dags_page():
    query, state = request.args.get("q", ""), request.args.get("state", "")
    rows = ui_data.dag_rows()
    shown = ui_data.filter_rows(rows, query, state)
    return render_template("dags.html", rows=shown, total=len(rows), q=query, state=state)


@ui.get("/ui/api/dags")
def dags_json():
    return jsonify({"dags": ui_data.dag_rows()})


@ui.post("/dags/<dag_id>/trigger")
def trigger(dag_id):
    needs("operator")
    conf = _parse_conf(request.form.get("conf", ""))
    run, _ = runs.trigger(dag_id, conf)
    url = url_for("ui.run_page", run_id=run.id)
    return done(f"Triggered run {run.id} of {dag_id}.", url, run_id=run.id, url=url)


def _parse_conf(text: str):
    """The trigger form's conf: empty, or a JSON object (the browser checks it first too)."""
    if not text.strip():
        return None
    try:
        conf = strict_json.loads(text)
    except ValueError as exc:
        raise Invalid([{"field": "conf", "message": f"not valid JSON: {exc}"}]) from None
    if not isinstance(conf, dict):
        raise Invalid([{"field": "conf", "message": "must be a JSON object, like {}"}])
    if strict_json.has_nul(conf):  # as the API's bodies (json_body)
        raise Invalid([{"field": "conf", "message": "strings may not contain NUL (\\u0000)"}])
    return conf


@ui.post("/dags/<dag_id>/pause")
def pause(dag_id):
    needs("operator")
    paused = request.form.get("paused") == "true"
    dags.set_paused(dag_id, {"paused": paused})
    message = f"{dag_id} is {'paused' if paused else 'active'}."
    return done(message, url_for("ui.dag_page", dag_id=dag_id), paused=paused)


@ui.get("/dags/<dag_id>")
def dag_page(dag_id):
    """A DAG's facts and one tab of it (grid, graph, or spec and versions); each tab reads
    only what it shows."""
    dag = dags.get(dag_id)
    current = dags.current_version(dag)
    tab = request.args.get("tab", "grid")
    tab = tab if tab in DAG_TABS else "grid"
    shown_runs = ui_data.window(dag)
    selected = int_arg("run", None, 1, 2**62)
    return render_template(
        "dag.html",
        dag=dag,
        row=_dag_row(dag, current, shown_runs),
        tab=tab,
        selected=selected,
        **DAG_TABS[tab](dag, current, shown_runs, selected),
    )


def _dag_row(dag, current, shown_runs) -> dict:
    return ui_data.dag_row(dag, current, shown_runs[-1] if shown_runs else None)


def _grid_tab(dag, current, shown_runs, selected) -> dict:
    return {"grid": ui_data.grid(current, shown_runs)}


def _graph_tab(dag, current, shown_runs, selected) -> dict:
    """The graph of the selected run's version (default: the current one), coloured by it."""
    spec = current.spec
    if selected:
        run = runs.get(selected)
        if run.dag_id != dag.id:
            raise Invalid([{"field": "run", "message": f"run {selected} is not of {dag.dag_id}"}])
        spec = run.dag_version.spec
    return {
        "graph": ui_data.graph(spec["tasks"]),
        "colours": ui_data.graph_runs(current, shown_runs, selected),
        "box": (ui_data.BOX_W, ui_data.BOX_H),
    }


def _code_tab(dag, current, shown_runs, selected) -> dict:
    shown = _version(dag, int_arg("version", None, 1, 2**31 - 1)) or current
    return {"shown": shown, "versions": ui_data.dag_versions(dag)}


DAG_TABS = {"grid": _grid_tab, "graph": _graph_tab, "code": _code_tab}


def _version(dag, number):
    if number is None:
        return None
    return DagVersion.get_or_none((DagVersion.dag == dag) & (DagVersion.version == number))


@ui.get("/ui/api/dags/<dag_id>/grid")
def grid_json(dag_id):
    """The DAG's row and what changed of its grid since the ``cursor`` its last answer
    gave (ui_data.grid: everything without one). The grid and graph tabs poll it."""
    dag = dags.get(dag_id)
    current = dags.current_version(dag)
    shown_runs = ui_data.window(dag)
    changed = ui_data.grid(current, shown_runs, request.args.get("cursor"))
    return jsonify({"dag": _dag_row(dag, current, shown_runs), **changed})


# Runs and task instances ------------------------------------------------------------------


def _run_json(run) -> dict:
    tis = runs.task_instances(run)
    return {
        "run": ui_data.run_summary(run),
        "tasks": [ui_data.task_row(ti) for ti in tis],
        "can_rerun": any(ti.state in ("failed", "upstream_failed", "cancelled") for ti in tis),
    }


@ui.get("/runs/<int:run_id>")
def run_page(run_id):
    run = runs.get(run_id)
    data = _run_json(run)
    conf = json.dumps(run.conf, indent=2) if run.conf is not None else ""
    return render_template("run.html", run=run, data=data, conf=conf)


@ui.get("/ui/api/runs/<int:run_id>")
def run_json(run_id):
    return jsonify(_run_json(runs.get(run_id)))


@ui.post("/runs/<int:run_id>/cancel")
def cancel(run_id):
    needs("operator")
    runs.cancel(run_id)
    return done(f"Cancelled run {run_id}.", url_for("ui.run_page", run_id=run_id))


@ui.post("/runs/<int:run_id>/rerun")
def rerun(run_id):
    needs("operator")
    cleared = runs.rerun_failed(run_id)
    message = f"Rerunning {', '.join(cleared)}."
    return done(message, url_for("ui.run_page", run_id=run_id))


@ui.post("/runs/<int:run_id>/tasks/<task_id>/clear")
def clear(run_id, task_id):
    needs("operator")
    cleared = runs.clear(run_id, task_id, request.form.get("downstream") == "true")
    message = f"Cleared {', '.join(cleared)}: running again."
    return done(message, url_for("ui.run_page", run_id=run_id))


@ui.post("/runs/<int:run_id>/tasks/<task_id>/mark")
def mark(run_id, task_id):
    needs("operator")
    state = request.form.get("state", "")
    runs.mark(run_id, task_id, state)
    return done(f"Marked {task_id} {state}.", url_for("ui.run_page", run_id=run_id))


def _try_number(ti) -> int:
    number = int_arg("try", None, 1, 10_000) or max(ti.try_number, 1)
    if not 1 <= number <= max(ti.try_number, 1):
        raise Invalid([{"field": "try", "message": f"{ti.task_id} has no try {number}"}])
    return number


@ui.get("/runs/<int:run_id>/tasks/<task_id>/logs")
def log_page(run_id, task_id):
    run, ti = runs.get(run_id), runs.task_instance(run_id, task_id)
    number = _try_number(ti)
    text, next_offset = runs.logs(ti, number, 0)
    return render_template(
        "log.html",
        run=run,
        ti=ti,
        task=ui_data.task_row(ti),
        tries=ui_data.tries(ti),
        number=number,
        text=text,
        next_offset=next_offset,
        live=_live(ti, number),
    )


def _live(ti, number: int) -> bool:
    """Whether more of this try's log may come: the current (or first, not yet started)
    try of a task that has not finished, in a run still going."""
    current = number == max(ti.try_number, 1)
    return current and ti.state not in TASK_FINISHED and ti.run.state not in RUN_FINISHED


@ui.get("/ui/api/runs/<int:run_id>/tasks/<task_id>/logs")
def log_json(run_id, task_id):
    ti = runs.task_instance(run_id, task_id)
    number = _try_number(ti)
    text, next_offset = runs.logs(ti, number, int_arg("offset", 0, 0, 2**31))
    body = {"text": text, "next_offset": next_offset, "live": _live(ti, number)}
    return jsonify({**body, "task": ui_data.task_row(ti), "run_state": ti.run.state})


@ui.get("/runs/<int:run_id>/tasks/<task_id>/logs/download")
def log_download(run_id, task_id):
    ti = runs.task_instance(run_id, task_id)
    number = _try_number(ti)
    text, _ = runs.logs(ti, number, 0)
    name = f"run{run_id}-{task_id}-try{number}.log"
    disposition = f'attachment; filename="{name}"'
    return Response(text, mimetype="text/plain", headers={"Content-Disposition": disposition})


# Functions --------------------------------------------------------------------------------


@ui.get("/functions")
def functions_page():
    return render_template(
        "functions.html",
        versions=ui_data.latest_function_versions(),
        used_by=ui_data.used_by(),
        form={},
    )


@ui.get("/functions/<name>")
def function_page(name):
    fn = functions.get(name)
    versions = ui_data.function_versions(fn)
    number = int_arg("version", None, 1, 2**31 - 1) or versions[0].version
    shown = functions.get_version(name, number)
    form = {"name": name, "source": shown.source, "handler": shown.handler}
    form.update(timeout=shown.timeout, memory_mb=shown.memory_mb)
    return render_template(
        "function.html",
        fn=fn,
        versions=versions,
        shown=shown,
        used_by=ui_data.used_by().get(name, []),
        packages=serialize.pinned_packages(shown.lock or ""),
        form=form,
    )


@ui.post("/functions")
def deploy():
    """Deploy from the browser: the API's payload, from a form (or an uploaded .py file)."""
    needs("admin")
    form = request.form
    upload = request.files.get("file")
    source = upload.read().decode("utf-8", "replace") if upload and upload.filename else None
    payload = {"name": form.get("name", "").strip(), "source": source or form.get("source", "")}
    for field, kind in (("handler", str), ("timeout", float), ("memory_mb", int)):
        value = form.get(field, "").strip()
        if value:
            try:
                payload[field] = kind(value)
            except ValueError:
                raise Invalid([{"field": field, "message": f"not a {kind.__name__}"}]) from None
    try:
        version, created = functions.deploy(payload, current_app.config["BRISA"])
    except BrisaError as exc:
        if wants_json():
            raise
        return _deploy_refused(payload, exc)
    name = version.function.name
    url = url_for("ui.function_page", name=name, version=version.version)
    if created:
        message = f"Deployed {name} version {version.version}."
    else:
        message = f"{name} version {version.version} already has this code: nothing changed."
    if wants_json():
        return jsonify({"ok": True, "message": message, "url": url})
    flash(message, "success")
    return redirect(url, code=303)


def _deploy_refused(payload: dict, exc: BrisaError):
    """Show the form again with what was typed and every problem, instead of losing it."""
    problems = [f"{e['field']}: {e['message']}" for e in (exc.details or [])] or [exc.message]
    form = {**payload, "problems": problems}
    existing = Function.get_or_none(Function.name == payload["name"])
    if existing is None:
        page = render_template(
            "functions.html",
            versions=ui_data.latest_function_versions(),
            used_by=ui_data.used_by(),
            form=form,
        )
        return page, exc.status
    versions = list(existing.versions.order_by(FunctionVersion.version.desc()))
    page = render_template(
        "function.html",
        fn=existing,
        versions=versions,
        shown=versions[0],
        used_by=ui_data.used_by().get(existing.name, []),
        form=form,
    )
    return page, exc.status

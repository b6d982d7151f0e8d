// Brisa UI: forms sent with fetch() (CSRF header), the trigger dialog, and pages that poll
// small JSON endpoints and update themselves in place (classes and text, no reloads).
(() => {
  "use strict";

  const POLL_MS = 1500;
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const esc = (s) =>
    String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const csrf = () => $('meta[name="csrf-token"]').content;
  const runUrl = (runId) => `/runs/${runId}`;
  const logUrl = (runId, taskId) => `/runs/${runId}/tasks/${encodeURIComponent(taskId)}/logs`;
  const human = (state) => (state || "none").replace(/_/g, " ");

  function setState(el, state) {
    // Swap the state-* class, keep the others; a badge shows the state's name too.
    el.className = el.className.replace(/\bstate-\S+/g, "").trim() + ` state-${state || "none"}`;
    if (el.classList.contains("badge")) el.textContent = human(state);
  }

  function toast(message, kind = "success", href = null) {
    const box = $("#flashes");
    const el = document.createElement("div");
    el.className = `flash flash-${kind}`;
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = message;
    if (href) {
      const link = document.createElement("a");
      link.href = href;
      link.textContent = " Open";
      el.append(link);
    }
    box.append(el);
    setTimeout(() => el.remove(), kind === "error" ? 9000 : 5000);
  }
  // Server-rendered flashes fade too.
  $$("#flashes .flash").forEach((el) => setTimeout(() => el.remove(), 7000));

  // Polling -------------------------------------------------------------------------------
  const pollers = [];

  function poll(url, apply) {
    const poller = { url, apply, timer: null, busy: false };
    poller.run = async () => {
      clearTimeout(poller.timer);
      if (!poller.busy && !document.hidden) {
        poller.busy = true;
        try {
          const res = await fetch(poller.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
          if (res.status === 401) return location.reload(); // signed out: the page redirects
          if (res.ok && apply(await res.json()) === false) return; // false: stop polling
        } catch (_) {
          /* offline for a moment: try again next tick */
        } finally {
          poller.busy = false;
        }
      }
      poller.timer = setTimeout(poller.run, POLL_MS);
    };
    pollers.push(poller);
    poller.timer = setTimeout(poller.run, POLL_MS);
    return poller;
  }
  const refreshNow = () => pollers.forEach((p) => p.run());
  document.addEventListener("visibilitychange", () => !document.hidden && refreshNow());

  // Forms sent with fetch -----------------------------------------------------------------
  async function send(form) {
    const res = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json", "X-CSRF-Token": csrf() },
      credentials: "same-origin",
    });
    let body = {};
    try {
      body = await res.json();
    } catch (_) {
      /* not JSON */
    }
    if (!res.ok) throw new Error((body.error && body.error.message) || `The server answered ${res.status}.`);
    return body;
  }

  function showPaused(dagId, paused) {
    $$(`form[data-fetch="pause"]`).forEach((form) => {
      if (!form.action.endsWith(`/dags/${encodeURIComponent(dagId)}/pause`)) return;
      form.elements.paused.value = paused ? "false" : "true";
      const sw = $(".switch", form);
      sw.setAttribute("aria-checked", paused ? "false" : "true");
      sw.title = paused ? "Paused: click to unpause" : "Active: click to pause";
    });
    $$(`[data-dag="${CSS.escape(dagId)}"]`).forEach((el) => el.classList.toggle("is-paused", paused));
    $$("[data-paused-label]").forEach((el) => (el.textContent = paused ? "paused" : "active"));
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form[data-fetch]")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const kind = form.dataset.fetch;
    if (kind === "trigger" && !validateConf()) return;
    const buttons = $$("button", form);
    buttons.forEach((b) => (b.disabled = true));
    try {
      const body = await send(form);
      if (kind === "pause") {
        const dagId = decodeURIComponent(form.action.split("/dags/")[1].replace(/\/pause$/, ""));
        showPaused(dagId, body.paused);
      }
      if (kind === "trigger") form.closest("dialog").close();
      toast(body.message, "success", body.url || null);
      refreshNow();
    } catch (err) {
      toast(err.message, "error");
    } finally {
      buttons.forEach((b) => (b.disabled = false));
      const menu = form.closest("details.menu");
      if (menu) menu.open = false;
    }
  });

  // Trigger dialog with a conf editor that validates before sending -----------------------
  function validateConf() {
    const area = $("#conf");
    const text = area.value.trim();
    let problem = "";
    if (text) {
      try {
        const value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          problem = 'conf must be a JSON object, like {"name": "Ada"}.';
        }
      } catch (err) {
        problem = `Not valid JSON: ${err.message}`;
      }
    }
    const box = $("#conf-error");
    box.textContent = problem;
    box.hidden = !problem;
    area.classList.toggle("invalid", Boolean(problem));
    $("#trigger-submit").disabled = Boolean(problem);
    return !problem;
  }

  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-trigger]");
    if (opener) {
      const dialog = $("#trigger-dialog");
      $("#trigger-form").action = opener.dataset.action;
      $("[data-dialog-dag]", dialog).textContent = opener.dataset.trigger;
      validateConf();
      dialog.showModal();
      $("#conf").focus();
    }
    const closer = event.target.closest("[data-close]");
    if (closer) closer.closest("dialog").close();
    // A click outside an open row menu closes it.
    $$("details.menu[open]").forEach((menu) => !menu.contains(event.target) && (menu.open = false));
  });
  document.addEventListener("input", (event) => event.target.id === "conf" && validateConf());

  // DAGs page ------------------------------------------------------------------------------
  function syncSquares(box, runs) {
    while (box.children.length > runs.length) box.lastElementChild.remove();
    runs.forEach((run, i) => {
      let sq = box.children[i];
      if (!sq) box.append((sq = document.createElement("a")));
      sq.className = `sq state-${run.state}`;
      sq.href = runUrl(run.run_id);
      sq.title = run.title;
      sq.dataset.run = run.run_id;
    });
    const none = box.parentElement.querySelector("[data-no-runs]");
    if (none) none.hidden = runs.length > 0;
  }

  function applyDagRow(row, dag) {
    const squares = $("[data-squares]", row);
    if (squares) syncSquares(squares, dag.runs);
    $$("[data-field]", row).forEach((el) => {
      const value = dag[el.dataset.field];
      if (value !== undefined) el.textContent = value || "—";
    });
  }

  const dagsTable = $("table[data-live]");
  if (dagsTable) {
    poll(dagsTable.dataset.live, (data) => {
      data.dags.forEach((dag) => {
        const row = $(`tr[data-dag="${CSS.escape(dag.dag_id)}"]`, dagsTable);
        if (!row) return;
        applyDagRow(row, dag);
        showPaused(dag.dag_id, dag.paused);
      });
    });
  }

  // A DAG's grid and graph poll what changed since their cursor, and merge it in --------
  const cursorUrl = (base, cursor) => `${base}?cursor=${encodeURIComponent(cursor)}`;

  function mergeGrid(held, fresh) {
    // fresh: the runs and cells that changed, every run's id, the tasks if they changed.
    const byId = new Map(held.runs.map((r) => [r.run_id, r]));
    fresh.runs.forEach((r) => byId.set(r.run_id, r));
    const cells = {};
    fresh.run_ids.forEach((id) => (cells[id] = fresh.cells[id] || held.cells[id] || {}));
    return {
      run_ids: fresh.run_ids,
      runs: fresh.run_ids.map((id) => byId.get(id)).filter(Boolean),
      cells,
      tasks: fresh.tasks || held.tasks,
      cursor: fresh.cursor,
    };
  }

  const gridLayout = $("[data-grid-live]");
  if (gridLayout) {
    const root = $("#grid");
    const details = $("#details");
    let data = JSON.parse($("#grid-data").textContent);
    let selected = null; // {run, task}

    const seconds = (run) => run.seconds || 0;
    const barHeight = (run, max) => `${Math.round(20 + 80 * (max ? seconds(run) / max : 0))}%`;

    function build() {
      const head = data.runs
        .map(
          (r) => `<th><a class="bar" href="${runUrl(r.run_id)}" data-run="${r.run_id}">` +
            `<span class="bar-fill state-${r.state}"></span></a></th>`,
        )
        .join("");
      const rows = data.tasks
        .map(
          (t) => `<tr><th class="task-name" title="${esc(t)}">${esc(t)}</th>` +
            data.runs
              .map((r) => `<td><button type="button" class="sq" data-run="${r.run_id}" data-task="${esc(t)}"></button></td>`)
              .join("") + "</tr>",
        )
        .join("");
      const corner = data.runs.length ? "" : '<span class="muted">No runs yet: trigger one.</span>';
      root.innerHTML = `<table class="grid-table"><thead><tr><th class="grid-corner">${corner}</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
    }

    function paint(sq) {
      const cell = (data.cells[sq.dataset.run] || {})[sq.dataset.task];
      setState(sq, cell ? cell.state : "none");
      sq.classList.toggle("selected", Boolean(selected && selected.run === sq.dataset.run && selected.task === sq.dataset.task));
      sq.title = `${sq.dataset.task} · run ${sq.dataset.run} · ${human(cell && cell.state)}`;
      sq.setAttribute("aria-label", sq.title);
    }

    function update(changed = null) {
      // changed: the ids of the runs whose cells came; null repaints every square.
      const key = data.runs.map((r) => r.run_id).join(",") + "|" + data.tasks.join("\u0000");
      if (root.dataset.key !== key) {
        build();
        root.dataset.key = key;
        changed = null;
      }
      const max = Math.max(0, ...data.runs.map(seconds));
      data.runs.forEach((run) => {
        const bar = $(`.bar[data-run="${run.run_id}"]`, root);
        const fill = $(".bar-fill", bar);
        setState(fill, run.state);
        fill.style.height = barHeight(run, max);
        bar.title = `run ${run.run_id} · ${run.run_type} · ${run.state}\n${run.logical_date}` +
          (run.duration ? ` · ${run.duration}` : "");
      });
      const squares = changed ? changed.flatMap((id) => $$(`button.sq[data-run="${id}"]`, root)) : $$("button.sq", root);
      squares.forEach(paint);
      showDetails();
    }

    function showDetails() {
      if (!selected) return;
      const run = data.runs.find((r) => String(r.run_id) === selected.run);
      const cell = run && (data.cells[selected.run] || {})[selected.task];
      if (!run) {
        details.innerHTML = '<p class="muted">That run is no longer in the grid.</p>';
        return;
      }
      const facts = [
        ["Run", `<a href="${runUrl(run.run_id)}">run ${run.run_id}</a> · ${esc(run.run_type)}`],
        ["Logical date", esc(run.logical_date)],
      ];
      if (cell) {
        facts.push(
          ["Try", String(cell.try_number)],
          ["Started", esc(cell.started_at) || "—"],
          ["Finished", esc(cell.finished_at) || "—"],
          ["Duration", esc(cell.duration) || "—"],
          ["Worker", esc(cell.worker) || "—"],
        );
      }
      const state = cell ? cell.state : "none";
      details.innerHTML =
        `<h3><span>${esc(selected.task)}</span><span class="badge state-${state}" data-testid="detail-state">${human(state)}</span></h3>` +
        `<dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>` +
        `<div class="actions">${cell ? `<a class="btn btn-sm btn-primary" href="${logUrl(run.run_id, selected.task)}">Log</a>` : ""}` +
        `<a class="btn btn-sm" href="${runUrl(run.run_id)}">Run details</a></div>`;
    }

    root.addEventListener("click", (event) => {
      const sq = event.target.closest("button.sq");
      if (!sq) return;
      selected = { run: sq.dataset.run, task: sq.dataset.task };
      update();
    });

    update();
    const base = gridLayout.dataset.gridLive;
    const poller = poll(cursorUrl(base, data.cursor), (fresh) => {
      data = mergeGrid(data, fresh);
      poller.url = cursorUrl(base, data.cursor);
      update(Object.keys(fresh.cells));
      $$("[data-field]").forEach((el) => {
        const value = fresh.dag[el.dataset.field];
        if (value !== undefined) el.textContent = value || "—";
      });
      showPaused(fresh.dag.dag_id, fresh.dag.paused);
    });
  }

  // A DAG's graph --------------------------------------------------------------------------
  const graphCard = $("[data-graph-live]");
  if (graphCard) {
    let runId = graphCard.dataset.selected || null;
    const svg = $("#graph");
    const base = graphCard.dataset.graphLive;
    svg.addEventListener("click", (event) => {
      const node = event.target.closest(".node");
      if (node && runId) location.href = logUrl(runId, node.dataset.task);
    });
    // The page shows its run's colours; a poll brings that run's cells only if they changed.
    const poller = poll(cursorUrl(base, graphCard.dataset.cursor), (data) => {
      poller.url = cursorUrl(base, data.cursor);
      if (!graphCard.dataset.selected && data.run_ids.length) runId = String(data.run_ids[data.run_ids.length - 1]);
      const cells = data.cells[runId];
      if (cells) {
        $$(".node", svg).forEach((node) => {
          const state = (cells[node.dataset.task] || {}).state || "none";
          node.setAttribute("class", `node state-${state}`);
          $("[data-node-state]", node).textContent = human(state);
          $("title", node).textContent = `${node.dataset.task} (${human(state)})`;
        });
      }
      const link = $("[data-graph-run]");
      if (link && runId) {
        link.href = runUrl(runId);
        link.textContent = `run ${runId}`;
      }
    });
  }

  // Run page -------------------------------------------------------------------------------
  const runHead = $("[data-run-live]");
  if (runHead) {
    poll(runHead.dataset.runLive, (data) => {
      setState($("[data-run-state]"), data.run.state);
      $$("[data-run-field]").forEach((el) => (el.textContent = data.run[el.dataset.runField] || "—"));
      $$('[data-when="can-rerun"]').forEach((el) => (el.hidden = !data.can_rerun));
      $$('[data-when="run-unfinished"]').forEach((el) => (el.hidden = data.run.finished));
      data.tasks.forEach((task) => {
        const row = $(`tr[data-task="${CSS.escape(task.task_id)}"]`);
        if (!row) return;
        row.dataset.finished = task.finished ? "1" : "0";
        setState($('[data-field="state"]', row), task.state);
        $('[data-field="try"]', row).textContent = String(task.try_number);
        for (const field of ["started_at", "duration", "worker"]) {
          $(`[data-field="${field}"]`, row).textContent = task[field] || "—";
        }
        const result = $('[data-field="result"]', row);
        result.textContent = task.result;
        result.title = task.result;
        const error = $('[data-field="error"]', row);
        error.textContent = task.error;
        error.hidden = !task.error;
      });
    });
  }

  // Logs: follow a running try -------------------------------------------------------------
  const logCard = $("[data-log-live]");
  if (logCard && logCard.dataset.live === "true") {
    const pre = $("#log");
    let offset = Number(logCard.dataset.offset);
    const poller = poll(logCard.dataset.logLive + `&offset=${offset}`, (data) => {
      if (data.text) {
        const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
        pre.append(document.createTextNode(data.text));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
        $("[data-log-empty]").hidden = true;
      }
      offset = data.next_offset;
      poller.url = logCard.dataset.logLive + `&offset=${offset}`;
      setState($("[data-task-state]"), data.task.state);
      $$(".facts [data-field]").forEach((el) => {
        const value = el.dataset.field === "try" ? String(data.task.try_number) : data.task[el.dataset.field];
        el.textContent = value || "—";
      });
      if (!data.live) {
        $("[data-follow]").hidden = true;
        if (!pre.textContent) $("[data-log-empty]").textContent = "This try wrote no log.";
        return false;
      }
    });
    pre.scrollTop = pre.scrollHeight;
  }
})();

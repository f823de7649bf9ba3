// The jobs page follows its rows live: it polls the JSON view and redraws rows, queues and workers.
(function () {
  const root = document.getElementById("jobs-page");
  const body = document.querySelector("#jobs tbody");
  const token = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const base = root.dataset.action;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children) node.append(child);
    return node;
  }

  function actionForm(key, action, label) {
    const form = el("form", { method: "post", action: `${base}${encodeURIComponent(key)}/${action}/` });
    form.append(el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: token }));
    form.append(el("button", { type: "submit", class: action === "cancel" ? "button cancel" : "button" }, label));
    return form;
  }

  function row(job) {
    const title = job.url ? el("a", { href: job.url }, job.title) : document.createTextNode(job.title);
    const bar = el("progress", { max: "100" });
    bar.value = job.progress;
    const actions = el("td", { class: "actions" });
    if (job.can_retry) actions.append(actionForm(job.key, "retry", "Retry"));
    if (job.can_cancel) actions.append(actionForm(job.key, "cancel", "Cancel"));
    return el("tr", { "data-key": job.key, class: `state-${job.state}` },
      el("td", { class: "job" }, el("span", { class: "kind" }, job.kind), " ", title),
      el("td", {}, el("span", { class: "state" }, job.state)),
      el("td", { class: "progress" }, bar, " ", el("span", { class: "percent" }, `${Math.round(job.progress)}%`), " ",
         el("span", { class: "detail" }, job.state === "failed" ? job.error : job.stage)),
      el("td", { class: "duration" }, job.duration),
      el("td", { class: "created" }, job.created),
      actions);
  }

  function redraw(data) {
    body.replaceChildren(...(data.jobs.length ? data.jobs.map(row) : [el("tr", { class: "none" }, el("td", { colspan: "6" }, "No jobs yet."))]));
    document.querySelector("#queues tbody").replaceChildren(...data.queues.map((q) =>
      el("tr", { "data-queue": q.name }, el("th", {}, q.name), el("td", {}, String(q.waiting)), el("td", {}, String(q.running)), el("td", {}, String(q.failed)))));
    document.querySelector("#workers tbody").replaceChildren(...(data.workers.length ? data.workers.map((w) =>
      el("tr", {}, el("th", {}, w.name), el("td", {}, w.state), el("td", {}, w.queues.join(", ")), el("td", {}, String(w.done)), el("td", {}, String(w.failed))))
      : [el("tr", {}, el("td", { colspan: "5" }, "none"))]));
    document.getElementById("worker-count").textContent = String(data.workers.length);
    document.getElementById("no-worker").hidden = Boolean(data.workers.length || data.error);
    const error = document.getElementById("queue-error");
    error.textContent = data.error;
    error.hidden = !data.error;
  }

  function poll() {
    fetch(root.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then(redraw)
      .catch(() => {})
      .finally(() => setTimeout(poll, 2000));
  }
  setTimeout(poll, 2000);
})();

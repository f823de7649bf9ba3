// Drag-and-drop upload: one request per file, so each shows its own progress and outcome. The
// server cleans each file in a background job; the row polls until the job says how it went.
(function () {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  const list = document.getElementById("upload-list");
  const summary = document.getElementById("upload-summary");
  const csrf = document.querySelector("#csrf [name=csrfmiddlewaretoken]").value;
  const counts = { added: 0, duplicate: 0, rejected: 0, error: 0 };
  let queue = [];
  let busy = false;

  function showSummary() {
    const left = queue.length + (busy ? 1 : 0);
    summary.textContent = `${counts.added} added, ${counts.duplicate} duplicates, ` +
      `${counts.rejected + counts.error} refused` + (left ? ` · ${left} to go` : "");
  }

  // The health line at the top, redrawn from the counts the last finished upload sent.
  function showHealth(parts) {
    const line = document.getElementById("health-line");
    if (!line) return;
    line.replaceChildren();
    parts.forEach(([label, count], i) => {
      if (i) line.append(" · ");
      const span = document.createElement("span");
      span.className = count ? "health-True" : "health-False";
      span.textContent = `${count} ${label}`;
      line.append(span);
    });
  }

  function row(file) {
    const li = document.createElement("li");
    li.innerHTML = '<div class="info"><div class="name"></div><progress max="100" value="0"></progress><div class="outcome"></div></div>';
    li.querySelector(".name").textContent = file.name;
    list.prepend(li);
    return li;
  }

  function finish(li, body, ok) {
    const outcome = ok ? body.outcome : "error";
    counts[outcome] += 1;
    li.className = outcome;
    li.querySelector("progress").remove();
    // The reason often is the flag ("3 faces"): say each thing once.
    const flags = (body.flags || []).filter((flag) => flag !== body.reason);
    const text = ok ? [body.outcome, body.reason, flags.join(", ")].filter(Boolean).join(": ")
      : (body.error || "upload failed");
    if (body.health) showHealth(body.health);
    li.querySelector(".outcome").textContent = text;
    if (body.thumbnail) {
      const link = document.createElement("a");
      link.href = body.url;
      const img = document.createElement("img");
      img.src = body.thumbnail;
      img.alt = "";
      link.appendChild(img);
      li.prepend(link);
    }
  }

  function next() {
    if (busy || !queue.length) { showSummary(); return; }
    busy = true;
    const file = queue.shift();
    const li = row(file);
    const form = new FormData();
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", zone.dataset.url);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) li.querySelector("progress").value = 50 * e.loaded / e.total; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = { error: `server said ${xhr.status}` }; }
      busy = false;
      if (xhr.status >= 300) finish(li, body, false);
      else follow(li, body);
      next();
    };
    xhr.onerror = () => { finish(li, { error: "network error" }, false); busy = false; next(); };
    xhr.send(form);
    showSummary();
  }

  // Poll a stored upload until its job is done (outcome known) or failed.
  function follow(li, body) {
    if (body.state === "done") { finish(li, body, true); showSummary(); return; }
    if (body.state === "failed") { finish(li, { error: body.error || "could not be processed" }, false); showSummary(); return; }
    li.querySelector("progress").value = 50 + body.progress / 2;
    li.querySelector(".outcome").textContent = body.stage || "waiting";
    setTimeout(() => {
      fetch(body.status_url, { credentials: "same-origin" }).then((r) => r.json())
        .then((next) => follow(li, next))
        .catch(() => follow(li, body));
    }, 500);
  }

  function add(files) { queue = queue.concat(Array.from(files)); next(); }

  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); add(e.dataTransfer.files); });
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
})();

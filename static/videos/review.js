// The review page: every action has a key, so a reviewer can go through a video fast.
(function () {
  // A member without a gallery photo: hide the broken image (no inline handlers: the CSP).
  document.querySelectorAll("img.member-photo").forEach((img) => {
    img.addEventListener("error", () => { img.style.visibility = "hidden"; });
  });
  const root = document.getElementById("review");
  if (!root) return;
  const csrf = document.querySelector("#csrf [name=csrfmiddlewaretoken]").value;
  const status = document.getElementById("review-status");
  const members = Array.from(root.querySelectorAll(".members span")).map((s) => ({ key: s.dataset.key, id: s.dataset.id, name: s.dataset.name, color: s.dataset.color }));
  const rows = () => Array.from(root.querySelectorAll(".track"));
  let undoStack = [];

  function current() { return root.querySelector(".track.current") || rows()[0]; }
  function select(row) {
    if (!row) return;
    rows().forEach((r) => r.classList.remove("current"));
    row.classList.add("current");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    const all = rows(), i = all.indexOf(current());
    select(all[Math.min(all.length - 1, Math.max(0, i + step))]);
  }

  function send(row, body) {
    body.track = row.dataset.track;
    return fetch(root.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.json().then((data) => ({ ok: r.ok, data })));
  }

  function show(row, data) {
    const name = row.querySelector(".name");
    name.textContent = data.is_face ? (data.member_name || "unknown") : "not a face";
    row.querySelector(".swatch").style.setProperty("--c", data.member_color || "#bbbbbb");
    row.classList.toggle("not-face", !data.is_face);
    if (data.corrected && !row.querySelector(".tag")) {
      const tag = document.createElement("span"); tag.className = "tag"; tag.textContent = "corrected";
      row.querySelector(".label").appendChild(tag);
    }
  }

  function act(row, action, extra) {
    const body = Object.assign({ action }, extra || {});
    return send(row, body).then(({ ok, data }) => {
      if (!ok) { status.textContent = data.error || "That did not work."; return; }
      show(row, data.track);
      if (data.new_track) { window.location.reload(); return; }
      undoStack.push({ row, correction: data.correction });
      status.textContent = `Track ${row.dataset.track}: ${data.summary}. Press z to undo.`;
      if (action !== "undo") move(1);
    });
  }

  function undo() {
    const last = undoStack.pop();
    if (!last) { status.textContent = "Nothing to undo."; return; }
    send(last.row, { action: "undo", correction: last.correction }).then(({ ok, data }) => {
      if (!ok) { status.textContent = data.error; return; }
      if (data.reload) { window.location.reload(); return; }
      show(last.row, data.track);
      select(last.row);
      status.textContent = `Undone: track ${last.row.dataset.track} is ${data.track.member_name || "unknown"} again.`;
    });
  }

  function split(row) {
    const first = Number(row.dataset.first), last = Number(row.dataset.last);
    const middle = Math.floor((first + last + 1) / 2);
    const answer = window.prompt(`Split track ${row.dataset.track} at which frame (${first + 1}–${last})?`, String(middle));
    if (answer) act(row, "split", { frame: Number(answer) });
  }

  root.addEventListener("click", (e) => {
    const row = e.target.closest(".track");
    if (!row) return;
    select(row);
    const action = e.target.dataset.action;
    if (!action || e.target.tagName === "SELECT") return;
    if (action === "split") split(row); else act(row, action);
  });
  root.addEventListener("change", (e) => {
    if (e.target.dataset.action === "member" && e.target.value) {
      act(e.target.closest(".track"), "member", { member: e.target.value });
      e.target.value = "";
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
    const row = current();
    if (!row) return;
    const member = members.find((m) => m.key === e.key);
    if (e.key === "ArrowDown" || e.key === "j") { e.preventDefault(); move(1); }
    else if (e.key === "ArrowUp" || e.key === "k") { e.preventDefault(); move(-1); }
    else if (e.key === "Enter") { e.preventDefault(); act(row, "confirm"); }
    else if (member) { act(row, "member", { member: member.id }); }
    else if (e.key === "u") { act(row, "unknown"); }
    else if (e.key === "x") { act(row, "not_face"); }
    else if (e.key === "s") { split(row); }
    else if (e.key === "z") { undo(); }
  });
  select(current());
})();

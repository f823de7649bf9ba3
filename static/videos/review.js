// The review page: every action has a key, so a reviewer can go through a video fast.
// The server answers each change with the rows it touched, rendered; they are swapped in place.
(function () {
  // A member without a gallery photo: hide the broken image (no inline handlers: the CSP).
  document.querySelectorAll("img.member-photo").forEach((img) => {
    img.addEventListener("error", () => { img.style.visibility = "hidden"; });
  });
  const root = document.getElementById("review");
  if (!root) return;
  const csrf = document.querySelector("#csrf [name=csrfmiddlewaretoken]").value;
  const status = document.getElementById("review-status");
  const panel = document.getElementById("suggestions");
  const members = Array.from(root.querySelectorAll(".members span")).map((s) => ({ key: s.dataset.key, id: s.dataset.id, name: s.dataset.name }));
  const rows = () => Array.from(root.querySelectorAll(".track"));
  const rowOf = (number) => root.querySelector(`.track[data-track="${number}"]`);
  const undoStack = [];
  let boxing = null, boxFrame = null;  // the row whose box is being fixed (b), and the frame

  function current() { return root.querySelector(".track.current") || rows()[0]; }
  // `seek`: the player goes to the track's first frame (not when it was picked in the player).
  function select(row, seek = true) {
    if (!row) return;
    if (boxing && row !== boxing) boxCancel();
    rows().forEach((r) => r.classList.remove("current"));
    row.classList.add("current");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
    root.dispatchEvent(new CustomEvent("track-selected", { detail: { row, seek } }));
  }
  function move(step) {
    const all = rows(), i = all.indexOf(current());
    select(all[Math.min(all.length - 1, Math.max(0, i + step))]);
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.json().then((data) => ({ ok: r.ok, data })))
      .catch(() => ({ ok: false, data: { error: "The server did not answer: nothing was changed." } }));
  }

  function fromHtml(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();  // rendered by the server, names escaped there
    return holder.content.firstElementChild;
  }

  // Put the server's rows in place: changed rows replaced, a split's new row after its head.
  function swap(data) {
    const selected = current() && current().dataset.track;
    Object.entries(data.rows || {}).forEach(([number, html]) => {
      const fresh = fromHtml(html), old = rowOf(number);
      if (old) old.replaceWith(fresh);
      else {
        const head = rowOf(data.track.number);
        if (head) head.after(fresh); else root.appendChild(fresh);
      }
    });
    (data.removed || []).forEach((number) => { const row = rowOf(number); if (row) row.remove(); });
    if (panel && "suggestions_html" in data) panel.innerHTML = data.suggestions_html;
    const again = rowOf(selected);
    if (again) again.classList.add("current");
    root.dispatchEvent(new CustomEvent("tracks-changed", { detail: data }));
  }

  function act(row, action, extra) {
    const number = row.dataset.track;
    const body = Object.assign({ action, track: number }, extra || {});
    return post(root.dataset.url, body).then(({ ok, data }) => {
      if (!ok) { status.textContent = data.error || "That did not work."; return; }
      swap(data);
      // Nothing to change is agreement: on to the next track, as after a change.
      if (data.unchanged) {
        status.textContent = `Track ${number}: ${data.summary}.`;
        if (action !== "box") move(1);
        return;
      }
      if (data.suggested) {
        undoStack.push({ number, suggestion: data.suggestion });
        status.textContent = `Suggested for track ${number}: ${data.summary}. The owner decides; press z to take it back.`;
      } else {
        undoStack.push({ number, correction: data.correction, box: data.box });
        status.textContent = data.new_track
          ? `Split track ${number}: frames from ${extra.frame} on are track ${data.new_track}, below it. Press z to undo.`
          : `Track ${number}: ${data.summary}. Press z to undo.`;
      }
      // After a split, merge or box fix the player stays where the change was made.
      if (action === "merge" || action === "box" || data.new_track) select(rowOf(number), false); else move(1);
    });
  }

  function undo() {
    const last = undoStack.pop();
    if (!last) { status.textContent = "Nothing to undo."; return; }
    const body = { action: "undo", track: last.number };
    if (last.suggestion) body.suggestion = last.suggestion; else body.correction = last.correction;
    post(root.dataset.url, body).then(({ ok, data }) => {
      if (!ok) { status.textContent = data.error; return; }
      swap(data);
      if (last.box) {  // back to the frame it was fixed in, to see it as it was
        select(rowOf(last.number), false);
        if (overlay) { video.pause(); overlay.seek(last.box.frame); }
        status.textContent = `Undone: track ${last.number}’s box at frame ${last.box.frame} is as it was.`;
        return;
      }
      select(rowOf(last.number));
      status.textContent = last.suggestion
        ? `Taken back: your suggestion for track ${last.number}.`
        : `Undone: track ${last.number} is ${data.track.is_face ? (data.track.member_name || "unknown") : "not a face"} again.`;
    });
  }

  // Where a split cuts: the player's frame when a player is there (review_player.js sets
  // root.splitFrame), else the frame asked for.
  function split(row) {
    const first = Number(row.dataset.first), last = Number(row.dataset.last);
    if (typeof root.splitFrame === "function") {
      const frame = root.splitFrame(row);
      if (frame === null) return;
      if (!(frame > first && frame <= last)) {
        status.textContent = `The playhead is at frame ${frame}: put it inside track ${row.dataset.track} (frames ${first + 1}–${last}) to split there.`;
        return;
      }
      act(row, "split", { frame });
      return;
    }
    const middle = Math.floor((first + last + 1) / 2);
    const answer = window.prompt(`Split track ${row.dataset.track} at which frame (${first + 1}–${last})?`, String(middle));
    if (answer) act(row, "split", { frame: Number(answer) });
  }

  // Merging: m marks a track, m on another track of the same person joins them (the one that
  // starts first keeps its number).
  let marked = null;
  function unmark() {
    const row = marked && rowOf(marked);
    if (row) row.classList.remove("marked");
    marked = null;
  }
  function merge(row) {
    if (!marked || !rowOf(marked)) {
      marked = row.dataset.track;
      row.classList.add("marked");
      status.textContent = `Track ${marked} marked: select another track of the same person and press m to merge them (Esc unmarks).`;
      return;
    }
    const other = rowOf(marked);
    unmark();
    if (other === row) { status.textContent = "Unmarked."; return; }
    const [head, tail] = Number(other.dataset.first) <= Number(row.dataset.first) ? [other, row] : [row, other];
    act(head, "merge", { other: tail.dataset.track });
  }

  // The player: the original video with every box drawn live (overlay.js); selecting a track
  // goes to its first frame and picks its boxes out.
  const playerBox = document.getElementById("review-player");
  const video = document.getElementById("player");
  let overlay = null;
  if (playerBox && window.twicesiteOverlay) {
    const frameNow = document.getElementById("frame-now"), frameTrack = document.getElementById("frame-track");
    overlay = window.twicesiteOverlay(video, document.getElementById("overlay"), {
      url: playerBox.dataset.predictions,
      members: JSON.parse(document.getElementById("members").textContent),
      showTrack: true,
      highlight: () => { const row = current(); return row ? Number(row.dataset.track) : null; },
      onFrame: (f) => {
        frameNow.textContent = `frame ${f}`;
        const row = current();
        if (!row) return;
        const first = Number(row.dataset.first), last = Number(row.dataset.last);
        frameTrack.textContent = f >= first && f <= last
          ? `· inside track ${row.dataset.track} (frames ${first}–${last}): s splits here, b fixes its box`
          : `· track ${row.dataset.track} is frames ${first}–${last}`;
      },
    });
    root.splitFrame = () => overlay.goal();
    // A browser that cannot play the file says so, and the page works without the player.
    const gone = () => {
      if (playerBox.hidden) return;
      playerBox.hidden = true;
      document.getElementById("player-notice").hidden = false;
      document.querySelector(".player-line").hidden = true;
      if (boxTools) boxTools.hidden = true;
      delete root.splitFrame;
    };
    video.addEventListener("error", gone);
    video.addEventListener("loadedmetadata", () => { if (!video.videoWidth) gone(); });
    root.addEventListener("track-selected", (e) => {
      if (!e.detail.seek) { overlay.paint(); return; }
      video.pause();
      const first = Number(e.detail.row.dataset.first);
      overlay.load().then(() => { overlay.seek(first); overlay.paint(); });
    });
    // A box clicked in the player picks its track in the list, at this frame.
    video.addEventListener("click", (e) => {
      const number = overlay.trackAt(e.clientX, e.clientY);
      const row = number === null ? null : rowOf(number);
      if (!row) return;
      e.preventDefault();
      video.pause();
      select(row, false);
      status.textContent = `Track ${number} picked in the player.`;
    });
    root.addEventListener("tracks-changed", (e) => {
      const d = e.detail;
      if (d.suggested || d.unchanged) return;
      if (d.box) { overlay.setBox(d.track.number, d.box.frame, d.box.box, d.track.member); return; }
      // Labels change in place; boxes that moved between tracks or left the export are read again.
      if (d.undone || !d.track.is_face || Object.keys(d.rows || {}).length > 1 || (d.removed || []).length) overlay.load(true).then(overlay.paint);
      else overlay.relabel(d.track.number, d.track.member);
    });
  }

  // Fixing one box at the playhead (b): the selected track's box there gets handles on the
  // overlay (or is drawn by dragging where the tracker lost the face); Enter saves, Delete
  // removes the track's box at this frame, Esc cancels. Owner and curators only.
  const boxTools = document.getElementById("box-tools");
  const NUDGE = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  function boxTool(name) { return boxTools && boxTools.querySelector(`[data-box="${name}"]`); }
  function boxShow(on) {
    if (!boxTools) return;
    boxTool("edit").hidden = on;
    boxTools.querySelector(".box-editing").hidden = !on;
  }
  function boxStart(row) {
    if (!overlay || !row || playerBox.hidden) return;
    if (root.dataset.editor !== "1") { status.textContent = "Only the owner or a curator can fix boxes: suggest names instead."; return; }
    if (row.classList.contains("not-face")) { status.textContent = `Track ${row.dataset.track} is not a face: it has no boxes to fix.`; return; }
    overlay.load().then(() => {
      const started = overlay.edit(row.dataset.track);
      boxing = row; boxFrame = started.frame;
      boxShow(true);
      const first = Number(row.dataset.first), last = Number(row.dataset.last), n = row.dataset.track;
      const outside = started.frame < first || started.frame > last
        ? ` Frame ${started.frame} is outside track ${n} (frames ${first}–${last}): a box here makes the track reach it.` : "";
      status.textContent = started.box
        ? `Fixing track ${n}’s box at frame ${started.frame}: drag it (or the arrow keys), or a corner to resize it. Enter saves, Delete removes it, Esc cancels.`
        : `Track ${n} has no box at frame ${started.frame}: drag over the face to draw one. Enter saves, Esc cancels.${outside}`;
    });
  }
  function boxEnd() { boxing = null; overlay.endEdit(); boxShow(false); }
  function boxCancel() { if (!boxing) return; boxEnd(); status.textContent = "Box fix cancelled: nothing changed."; }
  function boxSave(remove) {
    const frame = boxFrame, box = remove ? null : overlay.edited();
    if (!remove && !box) { status.textContent = "Drag over the face to draw its box first (Esc cancels)."; return; }
    const row = boxing;
    boxEnd();
    act(row, "box", { frame, box });
  }
  if (boxTools && overlay) {
    boxTools.addEventListener("click", (e) => {
      const button = e.target.closest("[data-box]");
      if (!button) return;
      button.blur();
      const name = button.dataset.box;
      if (name === "edit") boxStart(current());
      else if (name === "save") boxSave(false);
      else if (name === "remove") boxSave(true);
      else boxCancel();
    });
    // Playing or seeking leaves the frame being fixed.
    video.addEventListener("play", boxCancel);
    video.addEventListener("seeking", boxCancel);
  }

  function step(frames) {
    if (!overlay) return;
    video.pause();
    overlay.seek(Math.max(0, overlay.goal() + frames));
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
  if (panel) {
    panel.addEventListener("click", (e) => {
      const decision = e.target.dataset.decision, item = e.target.closest("[data-suggestion]");
      if (!decision || !item) return;
      post(item.dataset.url, { decision }).then(({ ok, data }) => {
        if (!ok) { status.textContent = data.error || "That did not work."; return; }
        swap(data);
        if (data.correction) undoStack.push({ number: item.dataset.track, correction: data.correction });
        status.textContent = data.summary + (data.correction ? ". Press z to undo." : ".");
      });
    });
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target === video) return;  // the player's own keys
    if (boxing) {  // while fixing a box, only its keys
      if (e.key === "Enter") { e.preventDefault(); boxSave(false); }
      else if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); boxSave(true); }
      else if (e.key === "Escape") boxCancel();
      else if (NUDGE[e.key]) {  // a pixel at a time (Shift: ten), for a box too small to drag well
        e.preventDefault();
        const [dx, dy] = NUDGE[e.key], by = e.shiftKey ? 10 : 1;
        overlay.nudge(dx * by, dy * by);
      }
      return;
    }
    if (video && e.key === " ") { e.preventDefault(); if (video.paused) video.play(); else video.pause(); return; }
    if (e.key === ",") { step(-1); return; }
    if (e.key === ".") { step(1); return; }
    if (e.key === "Escape") { unmark(); return; }
    const row = current();
    if (!row) return;
    const member = members.find((m) => m.key === e.key);
    if (e.key === "ArrowDown" || e.key === "j") { e.preventDefault(); move(1); }
    else if (e.key === "ArrowUp" || e.key === "k") { e.preventDefault(); move(-1); }
    else if (e.key === "Enter") { e.preventDefault(); act(row, "confirm"); }
    else if (member) { act(row, "member", { member: member.id }); }
    else if (e.key === "u") { act(row, "unknown"); }
    else if (e.key === "n") { if (row.dataset.member) act(row, "not_member"); else status.textContent = `Track ${row.dataset.track} names no member.`; }
    else if (e.key === "x") { act(row, "not_face"); }
    else if (e.key === "s") { split(row); }
    else if (e.key === "m") { merge(row); }
    else if (e.key === "b") { boxStart(row); }
    else if (e.key === "z") { undo(); }
  });
  select(current());
})();

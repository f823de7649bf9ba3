// Live boxes over a <video>: the stored detections (the predictions JSON) drawn on a canvas
// above the picture, frame by frame. Shared by the watch page and the review page.
//
// The frame on screen is found on the player's clock, never as currentTime * fps: real files
// start late (a video that starts after its sound, an edit list) and vary their frame rate.
// Frame n is shown at first_frame_time + n / fps, or at frame_times[n] (predictions JSON).
// While frames are presented, requestVideoFrameCallback says which one (its mediaTime is
// the frame's own time); otherwise a paused player shows the last frame at or before
// currentTime.
window.twicesiteOverlay = function (video, canvas, options) {
  const members = options.members || {};
  let byFrame = null, frameSize = [1, 1], loading = null, looping = false;
  let clock = { first: 0, fps: 30, times: null, frames: 1 };
  // Labels changed on the page since the JSON was read: track number -> member slug or null.
  const relabelled = new Map();

  function load(again) {
    if (byFrame && !again) return Promise.resolve();
    if (loading && !again) return loading;
    loading = fetch(options.url, { credentials: "same-origin" }).then((r) => r.json()).then((data) => {
      clock = {
        first: data.video.first_frame_time || 0, fps: data.video.fps || 30,
        times: data.video.frame_times || null, frames: Math.max(1, data.video.frames || 1),
      };
      frameSize = [data.video.width, data.video.height];
      byFrame = new Map();
      relabelled.clear();
      for (const d of data.detections) {
        if (!byFrame.has(d.frame)) byFrame.set(d.frame, []);
        byFrame.get(d.frame).push(d);
      }
    });
    return loading;
  }

  // When frame n is shown (n = frames: when the last one ends).
  function timeOf(n) {
    if (clock.times) return n < clock.times.length ? clock.times[n] : clock.times[clock.times.length - 1] + 1 / clock.fps;
    return clock.first + n / clock.fps;
  }
  const clamp = (n) => Math.max(0, Math.min(clock.frames - 1, n));
  // The frame shown at t: the last one at or before it. A constant-rate clock is exact to a
  // millisecond (WebM and Matroska round frame times to one), so a millisecond of slack.
  function frameAt(t) {
    if (!clock.times) return clamp(Math.floor((t - clock.first + 1e-3) * clock.fps));
    let lo = 0, hi = clock.times.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (clock.times[mid] <= t + 1e-6) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  // The frame whose own time is t (a presented frame's mediaTime): the nearest.
  function frameOf(t) {
    const n = frameAt(t);
    return n + 1 < clock.frames && Math.abs(timeOf(n + 1) - t) < Math.abs(timeOf(n) - t) ? n + 1 : n;
  }
  // mediaTime of the frame last presented since the last seek (null: none yet), and the frame
  // on screen when last asked: a seek under way has not changed the picture yet.
  let presented = null, callback = null, shown = 0;
  const presents = "requestVideoFrameCallback" in HTMLVideoElement.prototype;
  function onPresented(now, meta) {
    callback = null;
    // A frame presented while a seek is under way may be the old one; a paused player's
    // currentTime says which frame it shows until the next one is presented.
    if (!video.seeking) { presented = meta.mediaTime; paint(); }
    arm();
  }
  function arm() { if (presents && callback === null) callback = video.requestVideoFrameCallback(onPresented); }
  function frame() {
    if (video.seeking) return shown;
    shown = presented !== null ? frameOf(presented) : frameAt(video.currentTime);
    return shown;
  }
  // To the middle of frame n, so the player shows that frame whatever it rounds.
  let target = 0;
  function seek(number) {
    target = clamp(number);
    video.currentTime = (timeOf(target) + timeOf(target + 1)) / 2;
  }
  // Where a step goes from: the frame a seek under way goes to, or the one on screen.
  function goal() { return video.seeking ? target : frame(); }

  let placed = { scale: 1, ox: 0, oy: 0 };  // where the last paint put the picture

  function paint() {
    const rect = video.getBoundingClientRect();
    canvas.width = rect.width; canvas.height = rect.height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!byFrame) return;
    // The picture is letterboxed inside the element; find where it sits.
    const scale = Math.min(rect.width / frameSize[0], rect.height / frameSize[1]);
    const ox = (rect.width - frameSize[0] * scale) / 2, oy = (rect.height - frameSize[1] * scale) / 2;
    placed = { scale, ox, oy };
    const chosen = options.highlight ? options.highlight() : null;
    // Name tags shrink with a small picture (a phone), so they do not bury the faces.
    const size = Math.round(Math.max(10, Math.min(15, rect.width / 48)));
    const now = frame();
    for (const d of byFrame.get(now) || []) {
      if (editing && editing.frame === now && d.track === editing.track) continue;  // drawn below
      const slug = relabelled.has(d.track) ? relabelled.get(d.track) : d.member;
      const m = slug ? members[slug] : null;
      // The watch page leaves unknown faces out where the labelled MP4 does (VIDEO_SHOW_UNKNOWN).
      if (!m && options.hideUnknown) continue;
      const colour = m ? m.color : "#bbbbbb";
      const picked = chosen !== null && d.track === chosen;
      const [l, t, r, b] = d.box.map((v) => v * scale);
      ctx.globalAlpha = chosen === null || picked ? 1 : 0.55;
      ctx.lineWidth = picked ? 5 : 3; ctx.strokeStyle = colour;
      ctx.strokeRect(ox + l, oy + t, r - l, b - t);
      const text = (options.showTrack ? `${d.track} · ` : "") + (m ? m.name : "unknown");
      ctx.font = `bold ${size}px system-ui, sans-serif`;
      const w = ctx.measureText(text).width + 8;
      ctx.fillStyle = colour; ctx.fillRect(ox + l - 1.5, oy + t - size - 7, w, size + 7);
      ctx.fillStyle = "#000"; ctx.fillText(text, ox + l + 3, oy + t - 5);
    }
    ctx.globalAlpha = 1;
    if (editing && editing.frame === now && editing.box) paintEdited(ctx, scale, ox, oy);
    if (options.onFrame) options.onFrame(now);
  }

  // The box being fixed: dashed, with a handle at each corner to resize it by.
  function paintEdited(ctx, scale, ox, oy) {
    const [l, t, r, b] = editing.box.map((v) => v * scale);
    ctx.lineWidth = 3; ctx.strokeStyle = "#fff"; ctx.setLineDash([6, 4]);
    ctx.strokeRect(ox + l, oy + t, r - l, b - t);
    ctx.setLineDash([]);
    ctx.fillStyle = "#ff5fa2";
    for (const [x, y] of [[l, t], [r, t], [l, b], [r, b]]) ctx.fillRect(ox + x - 5, oy + y - 5, 10, 10);
  }

  // One animation loop while playing, however often draw() is called; where the browser says
  // when each frame is presented, that paints instead.
  function draw() {
    paint();
    arm();
    if (presents || video.paused || looping) return;
    looping = true;
    const step = () => {
      paint();
      if (video.paused) { looping = false; return; }
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  // The track whose box (the smallest, where boxes overlap) is under a point of the page.
  function trackAt(clientX, clientY) {
    if (!byFrame) return null;
    const rect = video.getBoundingClientRect();
    const x = (clientX - rect.left - placed.ox) / placed.scale, y = (clientY - rect.top - placed.oy) / placed.scale;
    let best = null, area = Infinity;
    for (const d of byFrame.get(frame()) || []) {
      const [l, t, r, b] = d.box;
      if (x >= l && x <= r && y >= t && y <= b && (r - l) * (b - t) < area) { best = d.track; area = (r - l) * (b - t); }
    }
    return best;
  }

  function relabel(track, slug) { relabelled.set(Number(track), slug); paint(); }

  // A track's box at a frame, [l, t, r, b] in the video's pixels, or null.
  function boxOf(track, at) {
    const d = ((byFrame && byFrame.get(at)) || []).find((x) => x.track === Number(track));
    return d ? d.box.slice() : null;
  }
  // A box fixed on the page (null: removed), shown at once without reading the JSON again.
  function setBox(track, at, box, member) {
    if (!byFrame) return;
    const list = byFrame.get(at) || [], i = list.findIndex((d) => d.track === Number(track));
    if (box === null) { if (i >= 0) list.splice(i, 1); }
    else if (i >= 0) list[i].box = box.slice();
    else list.push({ frame: at, time: timeOf(at), box: box.slice(), member, track: Number(track) });
    byFrame.set(at, list);
    paint();
  }

  // Fixing one box at the frame on screen: drag inside it to move it, a corner to resize it,
  // anywhere else to draw it afresh. Pointer events, so a mouse and a finger work alike.
  let editing = null;  // { track, frame, box, drag }
  const GRAB = 12;  // CSS pixels around a corner that take hold of it
  function edit(track) {
    video.pause();
    const at = goal();
    editing = { track: Number(track), frame: at, box: boxOf(track, at), drag: null };
    canvas.classList.add("editing");
    paint();
    return { frame: editing.frame, box: editing.box };
  }
  function endEdit() { editing = null; canvas.classList.remove("editing"); paint(); }
  // The edited box in whole pixels inside the picture, or null when there is none (yet).
  function edited() {
    if (!editing || !editing.box) return null;
    const [w, h] = frameSize, [l, t, r, b] = editing.box;
    const box = [Math.max(0, Math.round(Math.min(l, r))), Math.max(0, Math.round(Math.min(t, b))),
      Math.min(w, Math.round(Math.max(l, r))), Math.min(h, Math.round(Math.max(t, b)))];
    return box[2] > box[0] && box[3] > box[1] ? box : null;
  }
  // Moved by whole picture pixels from the keyboard, kept inside the picture.
  function nudge(dx, dy) {
    if (!editing || !editing.box) return;
    const [w, h] = frameSize, b = editing.box;
    dx = Math.max(-b[0], Math.min(w - b[2], dx)); dy = Math.max(-b[1], Math.min(h - b[3], dy));
    editing.box = [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy];
    paint();
  }
  function pointIn(e) {
    const rect = video.getBoundingClientRect();
    const clamp = (v, most) => Math.max(0, Math.min(most, v));
    return [clamp((e.clientX - rect.left - placed.ox) / placed.scale, frameSize[0]),
      clamp((e.clientY - rect.top - placed.oy) / placed.scale, frameSize[1])];
  }
  canvas.addEventListener("pointerdown", (e) => {
    if (!editing) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = pointIn(e), b = editing.box, grab = GRAB / placed.scale;
    let drag = { kind: "draw", from: [x, y] };
    if (b) {
      const corner = [[0, 1], [2, 1], [0, 3], [2, 3]].find(([i, j]) => Math.abs(x - b[i]) <= grab && Math.abs(y - b[j]) <= grab);
      if (corner) drag = { kind: "corner", corner };
      else if (x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]) drag = { kind: "move", from: [x, y], start: b.slice() };
    }
    editing.drag = Object.assign(drag, { was: b && b.slice() });
  });
  canvas.addEventListener("pointermove", (e) => {
    const drag = editing && editing.drag;
    if (!drag) return;
    const [x, y] = pointIn(e), [w, h] = frameSize;
    if (drag.kind === "move") {
      const s = drag.start;  // moved whole, and kept inside the picture
      const dx = Math.max(-s[0], Math.min(w - s[2], x - drag.from[0]));
      const dy = Math.max(-s[1], Math.min(h - s[3], y - drag.from[1]));
      editing.box = [s[0] + dx, s[1] + dy, s[2] + dx, s[3] + dy];
    } else if (drag.kind === "corner") {
      editing.box[drag.corner[0]] = x; editing.box[drag.corner[1]] = y;
    } else {
      editing.box = [drag.from[0], drag.from[1], x, y];
    }
    paint();
  });
  function release() {
    const drag = editing && editing.drag;
    if (!drag) return;
    editing.drag = null;
    editing.box = edited() || drag.was;  // a tap, or a box dragged flat, leaves it as it was
    paint();
  }
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);

  video.addEventListener("play", draw);
  video.addEventListener("seeking", () => { presented = null; });
  video.addEventListener("seeked", () => { paint(); arm(); });
  // A new source drops the callbacks asked of the old one.
  video.addEventListener("emptied", () => { presented = null; callback = null; });
  video.addEventListener("loadeddata", () => { paint(); arm(); });
  window.addEventListener("resize", paint);
  arm();
  return {
    load, draw, paint, frame, seek, relabel, trackAt, boxOf, setBox, edit, endEdit, edited, nudge,
    goal, timeOf, frameAt,
    get fps() { return clock.fps; },
  };
};

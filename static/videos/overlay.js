// Live boxes over a <video>: the stored detections (the predictions JSON) drawn on a canvas
// above the picture, frame by frame. Shared by the watch page and the review page.
window.twicesiteOverlay = function (video, canvas, options) {
  const members = options.members || {};
  let byFrame = null, fps = 30, frameSize = [1, 1], loading = null, looping = false;
  // Labels changed on the page since the JSON was read: track number -> member slug or null.
  const relabelled = new Map();

  function load(again) {
    if (byFrame && !again) return Promise.resolve();
    if (loading && !again) return loading;
    loading = fetch(options.url, { credentials: "same-origin" }).then((r) => r.json()).then((data) => {
      fps = data.video.fps || 30;
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

  // The frame on screen: frames start at n / fps.
  function frame() { return Math.floor(video.currentTime * fps + 1e-3); }
  function seek(number) { video.currentTime = (number + 0.5) / fps; }

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
    for (const d of byFrame.get(frame()) || []) {
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
    if (options.onFrame) options.onFrame(frame());
  }

  // One animation loop while playing, however often draw() is called.
  function draw() {
    paint();
    if (video.paused || looping) return;
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

  video.addEventListener("play", draw);
  video.addEventListener("seeked", paint);
  video.addEventListener("loadeddata", paint);
  window.addEventListener("resize", paint);
  return { load, draw, paint, frame, seek, relabel, trackAt, get fps() { return fps; } };
};

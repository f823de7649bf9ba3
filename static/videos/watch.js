// The video page: live boxes drawn from stored detections, a playhead on the timeline, seeking.
(function () {
  const root = document.getElementById("watch");
  const video = document.getElementById("player");
  const canvas = document.getElementById("overlay");
  const toggle = document.getElementById("live-boxes");
  const members = JSON.parse(document.getElementById("members").textContent);
  const playhead = document.getElementById("playhead");
  const timeline = document.getElementById("timeline");
  // The labelled MP4 draws unknown faces or not by the same setting (VIDEO_SHOW_UNKNOWN).
  const showUnknown = root.dataset.showUnknown === "1";
  let byFrame = null, fps = 30, frameSize = null;

  function load() {
    if (byFrame) return Promise.resolve();
    return fetch(root.dataset.predictions, { credentials: "same-origin" }).then((r) => r.json()).then((data) => {
      fps = data.video.fps || 30;
      frameSize = [data.video.width, data.video.height];
      byFrame = new Map();
      for (const d of data.detections) {
        if (!d.member && !showUnknown) continue;
        if (!byFrame.has(d.frame)) byFrame.set(d.frame, []);
        byFrame.get(d.frame).push(d);
      }
    });
  }

  function draw() {
    if (!toggle.checked) return;
    const rect = video.getBoundingClientRect();
    canvas.width = rect.width; canvas.height = rect.height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    // The picture is letterboxed inside the element; find where it sits.
    const scale = Math.min(rect.width / frameSize[0], rect.height / frameSize[1]);
    const ox = (rect.width - frameSize[0] * scale) / 2, oy = (rect.height - frameSize[1] * scale) / 2;
    const frame = Math.floor(video.currentTime * fps + 1e-3);
    for (const d of byFrame.get(frame) || []) {
      const m = d.member ? members[d.member] : null;
      const colour = m ? m.color : "#bbbbbb";
      const [l, t, r, b] = d.box.map((v) => v * scale);
      ctx.lineWidth = 3; ctx.strokeStyle = colour;
      ctx.strokeRect(ox + l, oy + t, r - l, b - t);
      const text = m ? m.name : "unknown";
      ctx.font = "bold 15px system-ui, sans-serif";
      const w = ctx.measureText(text).width + 10;
      ctx.fillStyle = colour; ctx.fillRect(ox + l - 1.5, oy + t - 22, w, 22);
      ctx.fillStyle = "#000"; ctx.fillText(text, ox + l + 4, oy + t - 6);
    }
    if (!video.paused) requestAnimationFrame(draw);
  }

  toggle.addEventListener("change", () => {
    const at = video.currentTime, playing = !video.paused;
    video.src = toggle.checked ? root.dataset.original : root.dataset.labelled;
    canvas.hidden = !toggle.checked;
    video.addEventListener("loadedmetadata", function once() {
      video.removeEventListener("loadedmetadata", once);
      video.currentTime = at;
      if (playing) video.play();
    });
    if (toggle.checked) load().then(draw);
  });
  video.addEventListener("play", () => requestAnimationFrame(draw));
  video.addEventListener("seeked", draw);
  video.addEventListener("timeupdate", () => {
    if (playhead && timeline) playhead.style.left = `calc(var(--name-width) + (100% - var(--name-width)) * ${video.currentTime / Number(timeline.dataset.duration)})`;
  });
  document.querySelectorAll(".timeline .span").forEach((span) => {
    span.addEventListener("click", () => { video.currentTime = Number(span.dataset.start) + 0.01; video.play(); });
  });
})();

// The video page: live boxes drawn from stored detections, a playhead on the timeline, seeking.
(function () {
  const root = document.getElementById("watch");
  const video = document.getElementById("player");
  const canvas = document.getElementById("overlay");
  const toggle = document.getElementById("live-boxes");
  const members = JSON.parse(document.getElementById("members").textContent);
  const playhead = document.getElementById("playhead");
  const timeline = document.getElementById("timeline");
  // The boxes come from the shared overlay (overlay.js); the canvas shows only when asked for.
  // The labelled MP4 draws unknown faces or not by the same setting (VIDEO_SHOW_UNKNOWN).
  const overlay = window.twicesiteOverlay(video, canvas, {
    url: root.dataset.predictions, members, hideUnknown: root.dataset.showUnknown === "0",
  });

  toggle.addEventListener("change", () => {
    const at = video.currentTime, playing = !video.paused;
    video.src = toggle.checked ? root.dataset.original : root.dataset.labelled;
    canvas.hidden = !toggle.checked;
    video.addEventListener("loadedmetadata", function once() {
      video.removeEventListener("loadedmetadata", once);
      video.currentTime = at;
      if (playing) video.play();
    });
    if (toggle.checked) overlay.load().then(overlay.draw);
  });
  video.addEventListener("timeupdate", () => {
    if (playhead && timeline) playhead.style.left = `calc(var(--name-width) + (100% - var(--name-width)) * ${video.currentTime / Number(timeline.dataset.duration)})`;
  });
  document.querySelectorAll(".timeline .span").forEach((span) => {
    span.addEventListener("click", () => { video.currentTime = Number(span.dataset.start) + 0.01; video.play(); });
  });
})();

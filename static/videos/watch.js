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

  const notice = document.getElementById("live-notice");
  // Both files are on the same clock, so the player keeps its time across the swap.
  function swap(live) {
    const at = video.currentTime, playing = !video.paused;
    video.src = live ? root.dataset.original : root.dataset.labelled;
    canvas.hidden = !live;
    video.addEventListener("loadedmetadata", function once() {
      video.removeEventListener("loadedmetadata", once);
      // A browser that cannot decode the picture plays the sound over nothing (videoWidth 0).
      if (live && !video.videoWidth) { unplayable(); return; }
      video.currentTime = at;
      if (playing) video.play();
    });
    if (live) overlay.load().then(overlay.draw);
  }
  function unplayable() {
    toggle.checked = false;
    toggle.disabled = true;
    notice.textContent = "This browser cannot play the original video, so boxes cannot be drawn live over it. The labelled video shows every name.";
    notice.hidden = false;
    swap(false);
  }
  video.addEventListener("error", () => { if (toggle.checked) unplayable(); });
  toggle.addEventListener("change", () => swap(toggle.checked));
  video.addEventListener("timeupdate", () => {
    if (playhead && timeline) playhead.style.left = `calc(var(--name-width) + (100% - var(--name-width)) * ${video.currentTime / Number(timeline.dataset.duration)})`;
  });
  document.querySelectorAll(".timeline .span").forEach((span) => {
    span.addEventListener("click", () => { video.currentTime = Number(span.dataset.start) + 0.01; video.play(); });
  });
})();

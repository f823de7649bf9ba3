// The video page: the labelled video, or the original with its boxes drawn live; the timeline
// follows the player. While the video is processed, names come in stretch by stretch: the
// original plays with the names found so far, and the timeline and screen time fill in.
(function () {
  const root = document.getElementById("watch");
  if (!root) return;
  const video = document.getElementById("player");
  const box = document.getElementById("player-box");
  const canvas = document.getElementById("overlay");
  const panels = document.getElementById("panels");
  const members = JSON.parse(document.getElementById("members").textContent);
  // The boxes come from the shared overlay (overlay.js). The labelled MP4 draws unknown faces
  // or not by the same setting (VIDEO_SHOW_UNKNOWN).
  const overlay = window.twicesiteOverlay(video, canvas, {
    url: root.dataset.predictions, members, hideUnknown: root.dataset.showUnknown === "0",
  });

  // The playhead on the timeline, and a stretch clicked plays from its start. Delegated: the
  // panels are swapped in anew while names come in.
  video.addEventListener("timeupdate", () => {
    const timeline = document.getElementById("timeline"), playhead = document.getElementById("playhead");
    if (!timeline || !playhead) return;
    const share = video.currentTime / Number(timeline.dataset.duration);
    playhead.style.left = `calc(var(--name-width) + (100% - var(--name-width)) * ${share})`;
  });
  panels.addEventListener("click", (e) => {
    const span = e.target.closest(".timeline .span");
    if (!span || box.hidden) return;
    video.currentTime = Number(span.dataset.start) + 0.01;
    video.play();
  });

  if (root.dataset.state === "done") watchDone(); else watchWhileNamed();

  // Processed: the labelled MP4, or the original with live boxes on request.
  function watchDone() {
    const toggle = document.getElementById("live-boxes");
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
  }

  // Still processed: follow the progress; play the original with the names found so far.
  function watchWhileNamed() {
    const title = document.getElementById("processing-title");
    const stage = document.getElementById("stage");
    const bar = document.getElementById("bar");
    const line = document.getElementById("names-line");
    const ready = document.getElementById("ready-notice");
    const review = document.getElementById("review-link");
    let playing = false, named = null, refreshed = 0;

    function play() {
      if (playing || !root.dataset.original) return;
      playing = true;
      box.hidden = false;
      canvas.hidden = false;
      video.src = root.dataset.original;
      overlay.load(true).then(overlay.draw);
    }
    function cannotPlay() {
      box.hidden = true;
      line.textContent = "This browser cannot play the original video: the names are listed below as they are found, and the video plays here once the labelled one is ready.";
    }
    video.addEventListener("error", () => { if (playing) cannotPlay(); });
    video.addEventListener("loadedmetadata", () => { if (playing && !video.videoWidth) cannotPlay(); });

    function refresh() {
      refreshed = Date.now();
      fetch(root.dataset.panels, { credentials: "same-origin" }).then((r) => r.text()).then((html) => {
        panels.innerHTML = html;
        video.dispatchEvent(new Event("timeupdate"));
      }).catch(() => {});
      if (playing) overlay.load(true).then(overlay.paint);
    }

    function poll() {
      fetch(root.dataset.progress, { credentials: "same-origin" }).then((r) => r.json()).then((job) => {
        if (job.state === "failed") { window.location.reload(); return; }
        stage.textContent = (job.stage || job.state) + " · " + Math.round(job.progress) + "%";
        bar.value = job.progress;
        if (job.named_until !== null) {
          play();
          title.textContent = job.names_ready ? "Names ready: drawing the labelled video" : `Names are in up to ${clock(job.named_until)}`;
          // New names: the panels and the boxes again, at most every 3 s (and at the end).
          if (job.named_until !== named && (Date.now() - refreshed > 3000 || job.names_ready)) {
            named = job.named_until;
            refresh();
          }
        }
        if (job.names_ready && review) review.hidden = false;
        if (job.state === "done") {
          refresh();
          // The labelled video, downloads and fancams are on the page itself: at once if
          // nothing is playing, else when the fan asks.
          if (video.paused) { window.location.reload(); return; }
          ready.hidden = false;
          return;
        }
        setTimeout(poll, 1000);
      }).catch(() => setTimeout(poll, 3000));
    }
    document.getElementById("open-labelled").addEventListener("click", () => window.location.reload());
    poll();
  }

  function clock(seconds) {
    const s = Math.floor(seconds), m = Math.floor(s / 60);
    return `${m}:${String(s % 60).padStart(2, "0")}`;
  }
})();

// The watch page opened at a moment: "#t=12.345" (a frame's time on the player's clock, as the
// member page and the together search link it) seeks the player there.
(function () {
  const video = document.getElementById("player");
  if (!video) return;
  function seek() {
    const found = /^#t=(\d+(?:\.\d+)?)$/.exec(window.location.hash);
    if (!found) return;
    // A hair past the frame's time, so the player shows that frame and not the one before.
    const at = Number(found[1]) + 0.001;
    if (video.readyState >= 1) video.currentTime = at;
    else video.addEventListener("loadedmetadata", () => { video.currentTime = at; }, { once: true });
  }
  window.addEventListener("hashchange", seek);
  seek();
})();

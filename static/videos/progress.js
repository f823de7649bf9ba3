// Poll the processing progress; reload the page when the video is ready or failed.
(function () {
  const box = document.getElementById("processing");
  const stage = document.getElementById("stage");
  const bar = document.getElementById("bar");
  function poll() {
    fetch(box.dataset.progress, { credentials: "same-origin" }).then((r) => r.json()).then((job) => {
      if (job.state === "done" || job.state === "failed") { window.location.reload(); return; }
      stage.textContent = (job.stage || job.state) + " · " + Math.round(job.progress) + "%";
      bar.value = job.progress;
      setTimeout(poll, 1000);
    }).catch(() => setTimeout(poll, 3000));
  }
  poll();
})();

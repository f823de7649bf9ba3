// Upload with progress, then follow processing progress until the video page is ready.
(function () {
  const form = document.getElementById("upload-form");
  const status = document.getElementById("upload-status");
  const stage = document.getElementById("upload-stage");
  const bar = document.getElementById("upload-progress");
  const error = document.getElementById("upload-error");
  const maxBytes = Number(form.dataset.maxBytes);

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    status.hidden = true;
    form.querySelector("button").disabled = false;
  }

  function follow(progressUrl, watchUrl) {
    fetch(progressUrl, { credentials: "same-origin" }).then((r) => r.json()).then((job) => {
      if (job.state === "done") { window.location = watchUrl; return; }
      if (job.state === "failed") { fail("Processing failed: " + job.error); return; }
      stage.textContent = "Processing: " + (job.stage || job.state) + " (" + Math.round(job.progress) + "%)";
      bar.value = job.progress;
      setTimeout(() => follow(progressUrl, watchUrl), 1000);
    }).catch(() => setTimeout(() => follow(progressUrl, watchUrl), 2000));
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    const file = form.querySelector("input[type=file]").files[0];
    if (!file) { fail("Choose a video file."); return; }
    if (file.size > maxBytes) { fail(`The file is ${(file.size / 1e6).toFixed(0)} MB; the limit is ${(maxBytes / 1e6).toFixed(0)} MB.`); return; }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) { bar.value = 100 * e.loaded / e.total; stage.textContent = `Uploading… ${Math.round(100 * e.loaded / e.total)}%`; }
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = { error: `The server answered ${xhr.status}.` }; }
      if (xhr.status >= 300) { fail(body.error || "Upload failed."); return; }
      stage.textContent = "Uploaded. Waiting for a worker…";
      bar.value = 0;
      follow(body.progress, body.url);
    };
    xhr.onerror = () => fail("The upload was interrupted. Check your connection and try again.");
    status.hidden = false;
    form.querySelector("button").disabled = true;
    const data = new FormData(form);
    data.set("file_name", file.name);  // as typed: the server's copy of the name is cut at a slash
    xhr.send(data);
  });
})();

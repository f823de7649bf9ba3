// Fancams on the watch page: ask for one, show its progress beside the member, play it here.
(function () {
  const panel = document.getElementById("fancams");
  if (!panel) return;
  const options = document.getElementById("fancam-options");
  const csrf = options.querySelector("[name=csrfmiddlewaretoken]").value;
  const player = document.getElementById("fancam-player");
  const video = document.getElementById("fancam-video");
  const title = document.getElementById("fancam-title");
  const download = document.getElementById("fancam-download");
  const list = document.getElementById("fancam-list");

  function stateOf(slug) { return document.querySelector(`.fancam-state[data-member="${CSS.escape(slug)}"]`); }

  function play(url, name, label) {
    player.hidden = false;
    video.src = url;
    title.textContent = label;
    download.href = url;
    download.setAttribute("download", name);
    video.play().catch(() => {});
    player.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  function listed(job) {
    if ([...list.querySelectorAll(".fancam-play")].some((b) => b.dataset.url === job.url)) return;
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button"; button.className = "link fancam-play";
    button.textContent = job.member_name;
    button.dataset.url = job.url; button.dataset.name = job.download_name;
    button.dataset.title = `${job.member_name} · ${job.settings}`;
    button.addEventListener("click", () => play(button.dataset.url, button.dataset.name, button.dataset.title));
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = ` ${job.settings}` + (job.duration ? ` · ${job.duration.toFixed(1)} s` : "");
    item.append(button, meta);
    list.prepend(item);
  }

  function follow(job, state, button) {
    if (job.state === "done") {
      state.textContent = "ready";
      button.disabled = false;
      listed(job);
      play(job.url, job.download_name, `${job.member_name} · ${job.settings}`);
      return;
    }
    if (job.state === "failed") {
      state.textContent = job.error || "the fancam could not be made";
      state.classList.add("error");
      button.disabled = false;
      return;
    }
    state.textContent = `${job.stage || job.state} · ${Math.round(job.progress)}%`;
    setTimeout(() => {
      fetch(job.status_url, { credentials: "same-origin" }).then((r) => r.json())
        .then((next) => follow(next, state, button))
        .catch(() => follow(job, state, button));
    }, 1000);
  }

  document.querySelectorAll(".fancam-make").forEach((button) => {
    button.addEventListener("click", () => {
      const state = stateOf(button.dataset.member);
      state.classList.remove("error");
      state.textContent = "asking…";
      button.disabled = true;
      const body = {
        member: button.dataset.member,
        aspect: options.elements.aspect.value,
        highlights: options.elements.highlights.checked,
        labels: options.elements.labels.checked,
      };
      fetch(panel.dataset.create, {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }).then((r) => r.json().then((job) => ({ ok: r.ok, job })))
        .then(({ ok, job }) => {
          if (!ok) { state.textContent = job.error; state.classList.add("error"); button.disabled = false; return; }
          follow(job, state, button);
        })
        .catch(() => { state.textContent = "no answer from the site; try again"; button.disabled = false; });
    });
  });
  list.querySelectorAll(".fancam-play").forEach((button) => {
    button.addEventListener("click", () => play(button.dataset.url, button.dataset.name, button.dataset.title));
  });
})();

// Face picker on the gallery image page: detected boxes over the image; click one to choose it.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".face-picker").forEach(function (picker) {
    const width = Number(picker.dataset.width), height = Number(picker.dataset.height);
    const boxes = JSON.parse(picker.dataset.boxes || "[]");
    let chosen = JSON.parse(picker.dataset.chosen || "null");
    const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
    const help = picker.nextElementSibling;

    function same(a, b) { return a && b && a.every((v, i) => v === b[i]); }

    function choose(value) {
      const body = new URLSearchParams({ face: value });
      fetch(picker.dataset.url, { method: "POST", body, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" })
        .then((r) => r.json().then((data) => ({ ok: r.ok, data })))
        .then(({ ok, data }) => {
          if (!ok) { help.textContent = data.error || "could not choose that face"; return; }
          chosen = data.face_box;
          draw();
          // The read-only fields below the picker say what was just chosen, not what the page
          // was loaded with.
          for (const [name, text] of Object.entries(data.fields || {})) {
            const field = document.querySelector(`.field-${name} .readonly`);
            if (field) field.textContent = text;
          }
          help.textContent = "Face chosen. " + (data.flags.length ? "Flags: " + data.flags.join(", ") : "No flags.") + " Approve it from the status field or the list.";
        });
    }

    function draw() {
      picker.querySelectorAll(".box").forEach((b) => b.remove());
      boxes.forEach(function (box, i) {
        const el = document.createElement("button");
        el.type = "button";
        el.className = "box" + (same(box, chosen) ? " chosen" : "");
        el.style.left = (100 * box[0] / width) + "%";
        el.style.top = (100 * box[1] / height) + "%";
        el.style.width = (100 * (box[2] - box[0]) / width) + "%";
        el.style.height = (100 * (box[3] - box[1]) / height) + "%";
        el.title = "Use face " + (i + 1);
        el.dataset.face = i;
        el.innerHTML = "<span>" + (i + 1) + "</span>";
        el.addEventListener("click", () => choose(String(i)));
        picker.appendChild(el);
      });
    }

    const actions = document.createElement("div");
    actions.className = "face-picker-actions";
    const whole = document.createElement("button");
    whole.type = "button";
    whole.className = "button";
    whole.textContent = "The whole image is the face";
    whole.addEventListener("click", () => choose("whole"));
    actions.appendChild(whole);
    help.after(actions);
    draw();
  });
});

// "Who is this?": a picture pasted, dropped or chosen is sent to the group's identify endpoint;
// every face comes back boxed and named, the member's gallery photo beside it, and a face the
// model is unsure of beside the two members it looks most like. Names are set as text, never
// as markup.
(function () {
  const root = document.getElementById("identify");
  const select = document.getElementById("group");
  const fileInput = document.getElementById("file");
  const drop = document.getElementById("drop");
  const pasteTarget = document.getElementById("paste-target");
  const status = document.getElementById("status");
  const result = document.getElementById("result");
  const figure = document.getElementById("picture");
  const photo = document.getElementById("photo");
  const boxes = document.getElementById("boxes");
  const summary = document.getElementById("summary");
  const list = document.getElementById("faces");
  const save = document.getElementById("save");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

  let picture = null; // the Blob asked about
  let pictureUrl = null;
  let answer = null;
  let asked = 0; // answers to older questions are dropped

  function say(text, isError) {
    status.textContent = text;
    status.hidden = !text;
    status.classList.toggle("error", Boolean(isError));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function memberPage(slug) {
    return root.dataset.memberPage.replace("__group__", encodeURIComponent(answer.group.slug))
      .replace("__member__", encodeURIComponent(slug));
  }

  function take(file) {
    if (!file) return;
    picture = file;
    if (pictureUrl) URL.revokeObjectURL(pictureUrl);
    pictureUrl = URL.createObjectURL(file);
    ask();
  }

  async function ask() {
    const question = ++asked;
    const slug = select.value;
    result.hidden = true;
    say("Looking for faces…");
    const body = new FormData();
    body.append("image", picture, picture.name || "pasted-picture");
    let response, data;
    try {
      response = await fetch(root.dataset.api.replace("__group__", encodeURIComponent(slug)), {
        method: "POST", body, headers: { "X-CSRFToken": csrf }, credentials: "same-origin",
      });
      data = await response.json();
    } catch (error) {
      if (question === asked) say("The picture could not be sent. Check the connection and try again.", true);
      return;
    }
    if (question !== asked) return;
    if (!response.ok) { say(data.error || "Something went wrong.", true); return; }
    answer = data;
    photo.src = pictureUrl;
    try { await photo.decode(); } catch (error) { /* shown without crops */ }
    if (question !== asked) return;
    show();
  }

  function describe(face) {
    const group = answer.group.name;
    if (face.verdict === "stranger") return `not someone in ${group}`;
    if (face.verdict === "named") return face.name;
    return face.member ? `${face.name}?` : "not sure";
  }

  function show() {
    say("");
    boxes.replaceChildren();
    list.replaceChildren();
    const faces = answer.faces;
    const named = faces.filter((f) => f.verdict === "named").length;
    const unsure = faces.filter((f) => f.verdict === "unsure").length;
    const strangers = faces.length - named - unsure;
    if (!faces.length) {
      summary.textContent = "No face was found in this picture. A face turned away, very small or covered may not be found.";
    } else {
      const parts = [`${named} named`];
      if (unsure) parts.push(`${unsure} not sure`);
      if (strangers) parts.push(`${strangers} not in ${answer.group.name}`);
      summary.textContent = `${faces.length} face${faces.length === 1 ? "" : "s"}: ${parts.join(", ")}.`;
      if (answer.faces_not_named) summary.textContent += ` ${answer.faces_not_named} smaller face${answer.faces_not_named === 1 ? " was" : "s were"} left out.`;
    }
    faces.forEach((face, index) => {
      const [left, top, right, bottom] = face.box;
      const box = el("div", `box ${face.verdict}`);
      box.style.left = `${(100 * left) / answer.width}%`;
      box.style.top = `${(100 * top) / answer.height}%`;
      box.style.width = `${(100 * (right - left)) / answer.width}%`;
      box.style.height = `${(100 * (bottom - top)) / answer.height}%`;
      if (face.color && face.verdict === "named") box.style.setProperty("--c", face.color);
      if (top < 0.08 * answer.height) box.classList.add("low"); // no room for the tag above
      const tag = el("span", "tag");
      tag.append(el("b", "", String(index + 1)), " ", el("span", "words", describe(face)));
      box.append(tag);
      boxes.append(box);
      list.append(faceItem(face, index));
    });
    result.hidden = false;
    fit();
  }

  // On a small picture the tags say only the face's number; the list below names them.
  function fit() { figure.classList.toggle("compact", figure.clientWidth < 560); }
  new ResizeObserver(fit).observe(figure);

  function crop(face) {
    const canvas = el("canvas", "crop");
    const side = 96;
    canvas.width = canvas.height = side;
    if (!photo.naturalWidth) return canvas;
    const scale = photo.naturalWidth / answer.width;
    const [left, top, right, bottom] = face.box;
    const size = Math.max(right - left, bottom - top) * 1.3;
    const cx = (left + right) / 2, cy = (top + bottom) / 2;
    canvas.getContext("2d").drawImage(photo, (cx - size / 2) * scale, (cy - size / 2) * scale, size * scale, size * scale, 0, 0, side, side);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "The face in your picture");
    return canvas;
  }

  function person(candidate, extra) {
    const card = el("div", "person");
    if (candidate.color) card.style.setProperty("--c", candidate.color);
    if (candidate.photo) {
      const img = el("img");
      img.src = candidate.photo;
      img.alt = `${candidate.name} in the gallery`;
      img.width = img.height = 96;
      card.append(img);
    } else {
      card.append(el("span", "no-photo", "no gallery photo"));
    }
    const name = el("a", "name", candidate.name);
    name.href = memberPage(candidate.member);
    card.append(name);
    if (extra) card.append(el("span", "meta", extra));
    return card;
  }

  function percent(score) { return `${Math.round(100 * score)}%`; }

  function faceItem(face, index) {
    const item = el("li", `face ${face.verdict}`);
    const heading = el("p", "verdict");
    heading.append(el("span", "number", String(index + 1)));
    const compare = el("div", "compare");
    const mine = el("figure", "mine");
    mine.append(crop(face), el("figcaption", "meta", "in your picture"));
    compare.append(mine);
    if (face.verdict === "named") {
      heading.append(` ${face.name}`);
      item.append(heading, el("p", "meta", `The model's confidence: ${percent(face.confidence)}`));
      compare.append(person(face.candidates[0], "gallery photo"));
    } else if (face.verdict === "unsure") {
      const [first, second] = face.candidates;
      heading.append(face.member ? ` Probably ${face.name}, not sure` : " Not sure who this is");
      const hint = face.member && second
        ? `It also looks like ${second.name}. Compare them:`
        : `Closest: ${first.name}${second ? ` and ${second.name}` : ""}. Compare them:`;
      item.append(heading, el("p", "meta", hint));
      face.candidates.forEach((c) => compare.append(person(c, c === first ? "closest" : "next closest")));
    } else {
      heading.append(` Not someone in ${answer.group.name}`);
      item.append(heading);
    }
    item.append(compare);
    return item;
  }

  // The picture with its boxes and names, drawn in this browser and saved as a file: nothing
  // is kept on the site.
  save.addEventListener("click", () => {
    if (!answer || !photo.naturalWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = photo.naturalWidth;
    canvas.height = photo.naturalHeight;
    const g = canvas.getContext("2d");
    g.drawImage(photo, 0, 0);
    const scale = canvas.width / answer.width;
    const font = Math.max(14, Math.round(canvas.width / 50));
    g.font = `600 ${font}px system-ui, sans-serif`;
    g.lineWidth = Math.max(2, font / 6);
    answer.faces.forEach((face, index) => {
      const [left, top, right, bottom] = face.box.map((v) => v * scale);
      const colour = face.verdict === "stranger" ? "#9a9a9a" : face.verdict === "unsure" ? "#f0a500" : face.color || "#ff5fa2";
      g.strokeStyle = colour;
      g.strokeRect(left, top, right - left, bottom - top);
      const text = `${index + 1} ${describe(face)}`;
      const width = g.measureText(text).width + font / 2;
      const y = top > font * 1.4 ? top - font * 1.4 : bottom;
      g.fillStyle = colour;
      g.fillRect(left, y, width, font * 1.4);
      g.fillStyle = "#111";
      g.fillText(text, left + font / 4, y + font * 1.05);
    });
    canvas.toBlob((blob) => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `who-is-this-${answer.group.slug}.png`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }, "image/png");
  });

  function firstPicture(items) {
    for (const item of items || []) {
      if (item.kind === "file" && item.type.startsWith("image/")) return item.getAsFile();
    }
    return null;
  }

  // Ctrl-V anywhere on the page, or Paste from the long-press menu of the paste target.
  document.addEventListener("paste", (event) => {
    const file = firstPicture(event.clipboardData && event.clipboardData.items);
    if (file) { event.preventDefault(); take(file); return; }
    if (event.target === pasteTarget) {
      event.preventDefault();
      say("There is no picture on the clipboard: copy a picture first (not a link to it).", true);
    }
  });
  pasteTarget.addEventListener("input", () => { pasteTarget.textContent = ""; });

  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) take(file); else say("Drop a picture file here.", true);
  });
  fileInput.addEventListener("change", () => { take(fileInput.files[0]); fileInput.value = ""; });
  select.addEventListener("change", () => { if (picture) ask(); });
})();

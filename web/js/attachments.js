// Files to send with the next message: picked with the Attach button, pasted or dropped on the
// composer. Each is checked here by the server's limits first (type and size, and how many a turn
// may carry), then asked for (POST /api/attachments) and uploaded straight to the object store with
// a progress bar; what the server or the store refuses is said in the composer's alert region. Each
// file has a labelled Remove button; Send waits while uploads run (`busy`).

import { ChatError } from "./api.js";

export const MAX_ATTACHMENTS = 5;
const MB = 1024 * 1024;
/** The types a turn may carry, and the largest file of each (the server's limits). */
export const LIMITS = {
  "image/jpeg": 5 * MB,
  "image/png": 5 * MB,
  "image/gif": 5 * MB,
  "image/webp": 5 * MB,
  "application/pdf": 32 * MB,
};

/** "1.2 MB", "830 KB", "12 bytes". */
export function formatSize(bytes) {
  if (bytes >= MB) return `${(bytes / MB).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
}

export class AttachmentTray {
  /**
   * @param api the ChatApi
   * @param list the <ul> that shows the files
   * @param errors the alert region for refusals
   * @param onChange called when `busy` or the files change (the page's controls follow)
   */
  constructor({ api, list, errors, onChange = () => {} }) {
    this.api = api;
    this.list = list;
    this.errors = errors;
    this.onChange = onChange;
    this.items = []; // {file, id, state: "uploading"|"ready", controller, element, url}
  }

  /** Some file is still uploading: the message cannot be sent yet. */
  get busy() {
    return this.items.some((item) => item.state === "uploading");
  }

  /** The ids of the uploaded files, in the order they were added. */
  get ids() {
    return this.items.filter((item) => item.state === "ready").map((item) => item.id);
  }

  /** What the sent message shows of its files: [{id, name, type, size, preview}]. */
  get sent() {
    return this.items
      .filter((item) => item.state === "ready")
      .map(({ id, file, url }) => ({ id, name: file.name, type: file.type, size: file.size, preview: url }));
  }

  /** Adds files (from the picker, a paste or a drop); refuses those past the limits, with a reason each. */
  add(files) {
    const problems = [];
    for (const file of files) {
      const limit = LIMITS[file.type];
      if (limit === undefined) {
        problems.push(`${file.name || "That file"} can't be attached: only JPEG, PNG, GIF and WebP images and PDFs can.`);
      } else if (file.size > limit) {
        problems.push(`${file.name} is too large (${formatSize(file.size)}): the limit is ${formatSize(limit)}.`);
      } else if (file.size === 0) {
        problems.push(`${file.name} is empty.`);
      } else if (this.items.length >= MAX_ATTACHMENTS) {
        problems.push(`${file.name} was not attached: a message can carry at most ${MAX_ATTACHMENTS} files.`);
      } else {
        this.#start(file);
      }
    }
    this.#say(problems);
  }

  /** Forgets every file (after a send, or for a new chat); uploads still running are cancelled. */
  clear({ keepPreviews = false } = {}) {
    for (const item of this.items) {
      item.controller.abort();
      if (!keepPreviews && item.url) URL.revokeObjectURL(item.url);
    }
    this.items = [];
    this.list.replaceChildren();
    this.list.hidden = true;
    this.onChange();
  }

  /** Takes the uploaded files out of the tray for a message being sent (their previews stay). */
  take() {
    const taken = this.items.filter((item) => item.state === "ready");
    this.items = this.items.filter((item) => item.state !== "ready");
    for (const item of taken) item.element.remove();
    this.list.hidden = this.items.length === 0;
    this.onChange();
    return taken;
  }

  /** Puts back what take() took: the message was not sent. */
  restore(taken) {
    if (!taken.length) return;
    this.items = [...taken, ...this.items].slice(0, MAX_ATTACHMENTS);
    this.list.replaceChildren(...this.items.map((item) => item.element));
    this.list.hidden = false;
    this.onChange();
  }

  clearErrors() {
    this.errors.replaceChildren();
  }

  #say(problems) {
    if (!problems.length) return;
    this.errors.replaceChildren(
      ...problems.map((text) => {
        const line = document.createElement("p");
        line.textContent = text;
        return line;
      }),
    );
  }

  async #start(file) {
    const item = { file, id: null, state: "uploading", controller: new AbortController(), url: null };
    item.element = this.#row(item);
    this.items.push(item);
    this.list.append(item.element);
    this.list.hidden = false;
    this.onChange();
    try {
      const answer = await this.api.createAttachment({ name: file.name, type: file.type, size: file.size });
      if (item.controller.signal.aborted) return;
      item.id = answer.id;
      await this.api.upload(answer.upload, file, {
        signal: item.controller.signal,
        onProgress: (fraction) => {
          item.progress.value = Math.round(fraction * 100);
        },
      });
      item.state = "ready";
      item.progress.parentElement.remove();
      item.element.classList.add("ready");
      this.onChange();
    } catch (error) {
      if (item.controller.signal.aborted || error?.name === "AbortError") return;
      this.#remove(item, { focus: false });
      this.#say([`${file.name} could not be attached. ${describe(error)}`]);
    }
  }

  #row(item) {
    const { file } = item;
    const row = document.createElement("li");
    row.className = "attachment";
    if (file.type.startsWith("image/")) {
      item.url = URL.createObjectURL(file);
      const image = document.createElement("img");
      image.src = item.url;
      image.alt = ""; // the name beside it says what it is
      image.className = "thumb";
      row.append(image);
    } else {
      row.append(fileIcon());
    }
    const name = document.createElement("span");
    name.className = "attachment-name";
    name.textContent = file.name; // never markup
    const size = document.createElement("span");
    size.className = "attachment-size";
    size.textContent = formatSize(file.size);
    const details = document.createElement("span");
    details.className = "attachment-details";
    details.append(name, size);
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    const progressId = `upload-${crypto.randomUUID()}`;
    progress.id = progressId;
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = progressId;
    label.textContent = `Uploading ${file.name}`;
    const uploading = document.createElement("span");
    uploading.className = "upload-progress";
    uploading.append(label, progress);
    details.append(uploading);
    item.progress = progress;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove-attachment";
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    const cross = document.createElement("span");
    cross.setAttribute("aria-hidden", "true");
    cross.textContent = "✕";
    remove.append(cross);
    remove.addEventListener("click", () => this.#remove(item, { focus: true }));
    row.append(details, remove);
    return row;
  }

  #remove(item, { focus }) {
    const index = this.items.indexOf(item);
    if (index === -1) return;
    item.controller.abort();
    if (item.url) URL.revokeObjectURL(item.url);
    this.items.splice(index, 1);
    item.element.remove();
    this.list.hidden = this.items.length === 0;
    if (focus) {
      // To the next file's Remove button, or the previous one's, or the box.
      const next = this.items[index] ?? this.items[index - 1];
      (next?.element.querySelector(".remove-attachment") ?? document.getElementById("message")).focus();
    }
    this.onChange();
  }
}

function describe(error) {
  if (error instanceof ChatError) {
    if (error.code === "unsupported_attachment") return "Only JPEG, PNG, GIF and WebP images and PDFs can be attached.";
    if (error.code === "attachment_too_large") return "It is larger than its type allows.";
    if (error.code === "network") return "Could not reach the chat service. Check your connection.";
    return error.message;
  }
  return "Something went wrong. Please try again.";
}

/** A document icon (decorative: the file's name is beside it). */
export function fileIcon() {
  const icon = document.createElement("span");
  icon.className = "file-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = "PDF";
  return icon;
}

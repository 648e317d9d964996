// The sidebar: the caller's conversations newest first (GET /api/conversations, a page at a time
// with "More conversations"), the open one marked with aria-current, and per conversation an
// Options dialog to rename, export (Markdown or JSON) and delete it, delete asking first.
// On a narrow screen the sidebar is a drawer: the header's button opens it, Esc, its Close
// button or the backdrop close it, and the rest of the page is inert while it is open.
//
// Titles are the caller's own text or made from their messages: never markup, so only ever
// set with textContent.

import { conversationHref } from "./router.js";

const NARROW = window.matchMedia("(max-width: 48rem)");

export class Sidebar {
  /**
   * @param api the ChatApi
   * @param explain (error) => a sentence for the person
   * @param onDeleted (id) => void, after a conversation is deleted
   * @param onRenamed (summary) => void, after a conversation is renamed
   * @param onNavigate () => void, when a conversation link is followed (the drawer closes)
   */
  constructor({ api, explain, onDeleted, onRenamed, onNavigate }) {
    this.api = api;
    this.explain = explain;
    this.onDeleted = onDeleted;
    this.onRenamed = onRenamed;
    this.onNavigate = onNavigate;
    this.items = new Map(); // id -> {summary, element, link, options}
    this.current = null;
    this.next = null;
    this.version = 0;
    this.selected = null; // the conversation the dialogs are about

    this.element = document.getElementById("sidebar");
    this.list = document.getElementById("conversation-list");
    this.emptyNote = document.getElementById("list-empty");
    this.moreButton = document.getElementById("more-conversations");
    this.listError = document.getElementById("list-error");
    this.toggle = document.getElementById("drawer-toggle");
    this.closeButton = document.getElementById("drawer-close");
    this.backdrop = document.getElementById("backdrop");
    this.optionsDialog = document.getElementById("conversation-dialog");
    this.renameForm = document.getElementById("rename-form");
    this.renameInput = document.getElementById("rename-input");
    this.dialogError = document.getElementById("dialog-error");
    this.deleteDialog = document.getElementById("delete-dialog");
    this.deleteName = document.getElementById("delete-name");

    this.moreButton.addEventListener("click", () => this.loadMore());
    this.list.addEventListener("keydown", (event) => this.#arrowKeys(event));
    this.list.addEventListener("click", (event) => {
      if (event.target.closest("a")) this.onNavigate();
    });
    this.toggle.addEventListener("click", () => (this.isOpen ? this.closeDrawer() : this.openDrawer()));
    this.closeButton.addEventListener("click", () => this.closeDrawer());
    this.backdrop.addEventListener("click", () => this.closeDrawer());
    this.element.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.isOpen) {
        event.preventDefault();
        event.stopPropagation();
        this.closeDrawer();
      }
    });
    NARROW.addEventListener("change", () => {
      if (!NARROW.matches) this.closeDrawer({ focusToggle: false });
    });

    this.renameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#rename();
    });
    document.getElementById("export-markdown").addEventListener("click", () => this.#export("markdown"));
    document.getElementById("export-json").addEventListener("click", () => this.#export("json"));
    document.getElementById("delete-start").addEventListener("click", () => this.#askDelete());
    document.getElementById("options-close").addEventListener("click", () => this.optionsDialog.close());
    document.getElementById("delete-confirm").addEventListener("click", () => this.#delete());
    document.getElementById("delete-cancel").addEventListener("click", () => this.deleteDialog.close());
    // Wherever a dialog closes without an outcome (Esc, Cancel), focus goes back to what opened it.
    for (const dialog of [this.optionsDialog, this.deleteDialog]) {
      dialog.addEventListener("close", () => {
        if (dialog.returnValue !== "done") this.#focusOptions();
        dialog.returnValue = "";
      });
    }
  }

  get isOpen() {
    return this.element.classList.contains("open");
  }

  /** The first page of the list, in place of whatever was shown. */
  async load() {
    const version = ++this.version;
    this.element.setAttribute("aria-busy", "true");
    try {
      const page = await this.api.conversations();
      if (version !== this.version) return;
      this.clear();
      this.#append(page.conversations);
      this.#setNext(page.next);
    } catch (error) {
      if (version !== this.version) return;
      this.#showListError(`Could not load your conversations. ${this.explain(error)}`);
    } finally {
      if (version === this.version) this.element.removeAttribute("aria-busy");
    }
  }

  async loadMore() {
    if (this.next === null || this.moreButton.disabled) return;
    const version = this.version;
    this.moreButton.disabled = true;
    this.moreButton.setAttribute("aria-busy", "true");
    try {
      const page = await this.api.conversations(this.next);
      if (version !== this.version) return;
      const first = this.#append(page.conversations);
      this.#setNext(page.next);
      // Focus goes on to the first conversation just shown, so the list reads on from there.
      if (first) first.focus();
      else if (page.next === null) this.list.querySelector("a:last-of-type")?.focus();
    } catch (error) {
      if (version === this.version) this.#showListError(`Could not load more conversations. ${this.explain(error)}`);
    } finally {
      this.moreButton.disabled = false;
      this.moreButton.removeAttribute("aria-busy");
    }
  }

  /** Empties the list (signed out: it was someone else's). */
  clear() {
    this.items.clear();
    this.list.replaceChildren();
    this.#setNext(null);
    this.listError.hidden = true;
    this.#updateEmpty();
  }

  /** Marks the open conversation (aria-current), or none for a new chat. */
  setCurrent(id) {
    this.current = id;
    for (const [itemId, item] of this.items) {
      if (itemId === id) item.link.setAttribute("aria-current", "page");
      else item.link.removeAttribute("aria-current");
    }
  }

  /** A conversation's new summary after a turn or a rename: at the top, with its title. */
  upsert(summary) {
    let item = this.items.get(summary.id);
    if (item) {
      item.summary = { ...item.summary, ...summary };
      this.#fill(item);
    } else {
      item = this.#create(summary);
    }
    this.list.prepend(item.element);
    this.#updateEmpty();
  }

  titleOf(id) {
    return this.items.get(id)?.summary.title ?? null;
  }

  /** The model of a conversation's last turn, as the list has it (null: not known here). */
  modelOf(id) {
    return this.items.get(id)?.summary.model ?? null;
  }

  openDrawer() {
    if (!NARROW.matches) return;
    this.element.classList.add("open");
    this.toggle.setAttribute("aria-expanded", "true");
    this.backdrop.hidden = false;
    for (const element of document.querySelectorAll("[data-outside-drawer]")) element.inert = true;
    const target = this.list.querySelector("a[aria-current]") ?? this.list.querySelector("a") ?? this.closeButton;
    target.focus();
  }

  closeDrawer({ focusToggle = true } = {}) {
    const wasOpen = this.isOpen;
    this.element.classList.remove("open");
    this.toggle.setAttribute("aria-expanded", "false");
    this.backdrop.hidden = true;
    for (const element of document.querySelectorAll("[data-outside-drawer]")) element.inert = false;
    if (wasOpen && focusToggle) this.toggle.focus();
  }

  #append(summaries) {
    let first = null;
    for (const summary of summaries) {
      if (this.items.has(summary.id)) continue; // moved up by a turn since the earlier page
      const item = this.#create(summary);
      this.list.append(item.element);
      first ??= item.link;
    }
    this.#updateEmpty();
    return first;
  }

  #create(summary) {
    const element = document.createElement("li");
    element.className = "conversation";
    const link = document.createElement("a");
    link.href = conversationHref(summary.id);
    const options = document.createElement("button");
    options.type = "button";
    options.className = "options";
    options.setAttribute("aria-haspopup", "dialog");
    options.textContent = "⋯";
    element.append(link, options);
    const item = { summary, element, link, options };
    options.addEventListener("click", () => this.#openOptions(item.summary.id));
    this.items.set(summary.id, item);
    this.#fill(item);
    if (summary.id === this.current) link.setAttribute("aria-current", "page");
    return item;
  }

  #fill(item) {
    const title = item.summary.title || "Untitled";
    item.link.textContent = title; // never markup
    item.options.setAttribute("aria-label", `Options for ${title}`);
    item.options.title = "Rename, export or delete";
  }

  #setNext(cursor) {
    this.next = cursor ?? null;
    this.moreButton.hidden = this.next === null;
  }

  #updateEmpty() {
    this.emptyNote.hidden = this.items.size > 0;
  }

  #showListError(text) {
    this.listError.textContent = text;
    this.listError.hidden = false;
  }

  /** Up and Down (Home, End) move between the conversations, as in any list. */
  #arrowKeys(event) {
    const links = [...this.list.querySelectorAll("a")];
    const at = links.indexOf(document.activeElement);
    let to = null;
    if (event.key === "ArrowDown") to = at < 0 ? 0 : Math.min(at + 1, links.length - 1);
    else if (event.key === "ArrowUp") to = at < 0 ? 0 : Math.max(at - 1, 0);
    else if (event.key === "Home") to = 0;
    else if (event.key === "End") to = links.length - 1;
    if (to === null || !links.length) return;
    event.preventDefault();
    links[to].focus();
  }

  #openOptions(id) {
    const item = this.items.get(id);
    if (!item) return;
    this.selected = id;
    this.renameInput.value = item.summary.title ?? "";
    this.dialogError.hidden = true;
    this.dialogError.textContent = "";
    document.getElementById("conversation-dialog-title").textContent = item.summary.title || "Untitled";
    this.optionsDialog.showModal();
    this.renameInput.select();
  }

  #focusOptions() {
    const item = this.items.get(this.selected);
    if (item && item.element.isConnected) item.options.focus();
  }

  #dialogProblem(text) {
    this.dialogError.textContent = text;
    this.dialogError.hidden = false;
  }

  async #rename() {
    const id = this.selected;
    const title = this.renameInput.value.trim();
    if (!title) {
      this.#dialogProblem("A title needs at least one character.");
      this.renameInput.focus();
      return;
    }
    const button = document.getElementById("rename-save");
    button.disabled = true;
    try {
      const summary = await this.api.renameConversation(id, title);
      const item = this.items.get(id);
      if (item) {
        item.summary = { ...item.summary, ...summary };
        this.#fill(item);
      }
      this.onRenamed({ ...summary, id });
      this.optionsDialog.close();
    } catch (error) {
      this.#dialogProblem(`Could not rename it. ${this.explain(error)}`);
    } finally {
      button.disabled = false;
    }
  }

  async #export(format) {
    const id = this.selected;
    try {
      const { blob, filename } = await this.api.exportConversation(id, format);
      const extension = format === "json" ? "json" : "md";
      download(blob, filename ?? `${slug(this.titleOf(id))}.${extension}`);
    } catch (error) {
      this.#dialogProblem(`Could not export it. ${this.explain(error)}`);
    }
  }

  #askDelete() {
    this.deleteName.textContent = this.titleOf(this.selected) || "Untitled"; // never markup
    this.optionsDialog.returnValue = "done";
    this.optionsDialog.close();
    document.getElementById("delete-error").hidden = true;
    this.deleteDialog.showModal(); // Cancel has autofocus: Enter alone deletes nothing
  }

  async #delete() {
    const id = this.selected;
    const button = document.getElementById("delete-confirm");
    button.disabled = true;
    try {
      await this.api.deleteConversation(id);
      this.#forget(id);
    } catch (error) {
      if (error.code === "not_found") {
        this.#forget(id); // already gone (another tab): the list catches up
      } else {
        const problem = document.getElementById("delete-error");
        problem.textContent = `Could not delete it. ${this.explain(error)}`;
        problem.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  }

  #forget(id) {
    const item = this.items.get(id);
    const neighbour = item?.element.nextElementSibling ?? item?.element.previousElementSibling;
    item?.element.remove();
    this.items.delete(id);
    this.#updateEmpty();
    const wasOpen = id === this.current;
    this.deleteDialog.returnValue = "done";
    this.deleteDialog.close();
    this.onDeleted(id);
    // Focus stays in the list where it can; for the open conversation, the page moves it (to a new chat).
    if (!wasOpen) (neighbour?.querySelector("a") ?? document.getElementById("new-chat")).focus();
  }
}

/** A file the person downloads, made in the page (the export call carried the credentials). */
function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function slug(title) {
  const words = (title ?? "").toLowerCase().match(/[a-z0-9]+/g) ?? [];
  return words.join("-").slice(0, 60) || "conversation";
}

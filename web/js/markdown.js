// Markdown for model replies: markdown-it parses, this module builds DOM nodes from its tokens.
//
// Why markdown-it: it follows CommonMark, is well kept, and parses in time roughly linear in the
// text (a hand-written renderer took 35 s over 500 `\.` and 8,000 `[`; markdown-it takes
// milliseconds). Why nodes built from tokens rather than md.render()'s HTML string: a reply is
// untrusted text, and createElement/textContent make any HTML in it plain text by construction,
// whatever a renderer rule might let through. Raw HTML is off in the parser too (`html: false`).
//
// Links keep only absolute http(s) and mailto targets (markdown-it's validateLink, and again when
// the <a> is made); anything else stays text. Images become links: a reply cannot make the browser
// fetch anything by itself (no tracking pixel), and the page's CSP would block them anyway.
//
// Code blocks are highlighted by highlight.js and get a Copy button. StreamingMarkdown renders a
// reply as it streams: at most once per animation frame, parsing only the unfinished tail again.

import markdownit from "../vendor/markdown-it.js";
import hljs from "../vendor/highlight.js";

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
// Auto-detection runs every registered language over the block (8 to 45 ms per 1,000 characters),
// so only short blocks without a language get it, and only once a block is complete.
const AUTO_DETECT_LIMIT = 2_000;
// Highlighting costs about 3 ms per 1,000 characters: a block longer than this shows as plain text.
const HIGHLIGHT_LIMIT = 100_000;
// While a reply streams, the unfinished code block is highlighted again on every frame; past this
// size it shows as plain text until it is complete .
const STREAMING_HIGHLIGHT_LIMIT = 20_000;
const LANGUAGE_NAME = /^[\w+#.-]{1,32}$/;
const COPIED_FOR_MS = 2_000;

const md = markdownit({ html: false, linkify: true, breaks: true, typographer: false });
md.validateLink = (url) => safeUrl(url) !== null;
// Only links written out in full: no "app.py" or "example.com" turned into a link (fuzzy), and no
// ftp: or protocol-relative "//host" ones.
md.linkify.set({ fuzzyLink: false, fuzzyEmail: false, fuzzyIP: false });
md.linkify.add("ftp:", null).add("//", null);

// A citation marker in a reply's text, put there by the page (never by Claude: the page strips these
// private-use characters from what it receives): `cite` (an option) makes it an element.
export const CITATION_MARK = /\uE000(\d+)\uE001/g;

/** The marker of citation number `n`, to put in a reply's text after the passage it supports. */
export function citationMark(n) {
  return `\uE000${n}\uE001`;
}

/**
 * Renders Markdown text into a DocumentFragment of safe elements, Copy buttons wired. With `cite`,
 * a function of a number to an element, the text's citation marks become its elements.
 */
export function renderMarkdown(text, { cite = null } = {}) {
  return render(String(text), {}, { streaming: false, cite });
}

/** The URL if it is absolute and its scheme is one a link may use, else null. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(String(raw).trim());
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

/**
 * Renders a reply into `container` while it streams (the container's children are its own).
 *
 * `update(fullText)` takes the whole reply so far on every delta and renders at most once per
 * animation frame. The settled part of the text (up to a blank line that ends every open block:
 * outside a code fence, and followed by a line that cannot continue a list or an indented block)
 * is parsed and appended once; only the tail after it is parsed and replaced on each frame.
 * `finish(fullText)` renders the whole text once, synchronously, exactly as renderMarkdown does.
 */
export class StreamingMarkdown {
  /** What rendering cost so far, for tests and benchmarks: frames, characters parsed, time spent. */
  stats = { frames: 0, parsedChars: 0, ms: 0 };

  #container;
  #text = "";
  #frame = 0;
  #started = false;
  #settled = ""; // the text rendered once and kept: the prefix up to #boundary.end
  #boundary = new BoundaryScanner();
  #env = {}; // link reference definitions of the settled text, for the tail to use
  #tail = []; // the top-level nodes of the tail, replaced on each frame

  #cite;

  constructor(container, { cite = null } = {}) {
    this.#container = container;
    this.#cite = cite;
  }

  update(fullText) {
    this.#text = String(fullText);
    if (!this.#frame) {
      this.#frame = requestAnimationFrame(() => {
        this.#frame = 0;
        this.#render();
      });
    }
  }

  finish(fullText) {
    if (this.#frame) cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    const started = performance.now();
    this.#text = String(fullText);
    this.#container.replaceChildren(renderMarkdown(this.#text, { cite: this.#cite }));
    this.stats.parsedChars += this.#text.length;
    this.stats.ms += performance.now() - started;
    this.#reset();
  }

  #reset() {
    this.#started = false;
    this.#settled = "";
    this.#boundary = new BoundaryScanner();
    this.#env = {};
    this.#tail = [];
  }

  #render() {
    const started = performance.now();
    const text = normalizeNewlines(this.#text);
    if (!this.#started || !text.startsWith(this.#settled)) {
      // A new reply, or one that is not the old one grown (regenerated): start again.
      this.#reset();
      this.#container.replaceChildren();
      this.#started = true;
    }
    const end = this.#boundary.scan(text);
    if (end > this.#settled.length) {
      const chunk = text.slice(this.#settled.length, end);
      for (const node of this.#tail) node.remove();
      this.#tail = [];
      this.#container.append(render(chunk, this.#env, { streaming: false, cite: this.#cite }));
      this.#settled = text.slice(0, end);
      this.stats.parsedChars += chunk.length;
    }
    const tail = text.slice(this.#settled.length);
    const env = { references: { ...this.#env.references } };
    const fragment = render(tail, env, { streaming: true, cite: this.#cite });
    const nodes = [...fragment.childNodes];
    for (const node of this.#tail) node.remove();
    this.#container.append(fragment);
    this.#tail = nodes;
    this.stats.parsedChars += tail.length;
    this.stats.frames += 1;
    this.stats.ms += performance.now() - started;
  }
}

/**
 * Finds, line by line and never twice over the same line, the last offset where the text can be
 * cut so that rendering the two parts apart gives what rendering them together would: the start
 * of a line that follows a blank line, is not indented (so it continues no list item or indented
 * code) and is no list marker (so it continues no loose list), with no code fence open.
 */
class BoundaryScanner {
  end = 0; // the last safe cut found
  #pos = 0; // the start of the first line not yet scanned
  #fence = null; // the open fence: { char, length }
  #afterBlank = -1; // the start of the line after a blank line, while that line is not yet known

  scan(text) {
    for (let newline = text.indexOf("\n", this.#pos); newline !== -1; newline = text.indexOf("\n", this.#pos)) {
      this.#line(text.slice(this.#pos, newline), this.#pos);
      this.#pos = newline + 1;
    }
    return this.end;
  }

  #line(line, start) {
    if (this.#fence) {
      const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
      if (close && close[1][0] === this.#fence.char && close[1].length >= this.#fence.length) this.#fence = null;
      return;
    }
    if (/^[ \t]*$/.test(line)) {
      this.#afterBlank = start + line.length + 1;
      return;
    }
    if (this.#afterBlank === start && !/^[ \t]/.test(line) && !/^(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)/.test(line)) {
      this.end = start;
    }
    this.#afterBlank = -1;
    const open = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (open && !(open[1][0] === "`" && open[2].includes("`"))) {
      this.#fence = { char: open[1][0], length: open[1].length };
    }
  }
}

function normalizeNewlines(text) {
  return text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
}

function render(text, env, options) {
  const fragment = document.createDocumentFragment();
  appendTokens(fragment, md.parse(text, env), options);
  return fragment;
}

// The elements a token may become. Headings move down one level: the page's title is the h1.
const BLOCK_TAGS = {
  p: "p",
  h1: "h2",
  h2: "h3",
  h3: "h4",
  h4: "h5",
  h5: "h6",
  h6: "h6",
  blockquote: "blockquote",
  ul: "ul",
  ol: "ol",
  li: "li",
  table: "table",
  thead: "thead",
  tbody: "tbody",
  tr: "tr",
  th: "th",
  td: "td",
};
const INLINE_TAGS = { strong: "strong", em: "em", s: "s" };
const ALIGNMENTS = new Set(["left", "center", "right"]);

function appendTokens(root, tokens, options) {
  const stack = [root];
  for (const token of tokens) {
    const parent = stack.at(-1);
    if (token.nesting === 1) {
      stack.push(token.hidden ? parent : openBlock(parent, token)); // a tight list's paragraphs are hidden
    } else if (token.nesting === -1) {
      if (stack.length > 1) stack.pop();
    } else if (token.type === "inline") {
      appendInline(parent, token.children ?? [], options);
    } else if (token.type === "fence" || token.type === "code_block") {
      parent.append(codeBlock(token.content.replace(/\n$/, ""), token.info, options));
    } else if (token.type === "hr") {
      parent.append(document.createElement("hr"));
    } else if (token.content) {
      parent.append(token.content); // html_block cannot occur with html off; as text if it did
    }
  }
}

/** Text, its citation marks made elements by `options.cite` (without it, dropped). */
function appendText(parent, text, options) {
  let last = 0;
  for (const match of text.matchAll(CITATION_MARK)) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    const element = options.cite?.(Number(match[1]));
    if (element) parent.append(element);
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(last ? text.slice(last) : text);
}

function openBlock(parent, token) {
  const node = document.createElement(BLOCK_TAGS[token.tag] ?? "div");
  if (token.tag === "ol") {
    const start = parseInt(token.attrGet("start") ?? "1", 10);
    if (Number.isFinite(start) && start !== 1) node.start = start;
  } else if (token.tag === "th" || token.tag === "td") {
    const align = /text-align:\s*(\w+)/.exec(token.attrGet("style") ?? "")?.[1];
    if (ALIGNMENTS.has(align)) node.style.textAlign = align; // CSSOM: allowed by style-src 'self'
    if (token.tag === "th") node.scope = "col";
  }
  if (token.tag === "table") {
    const scroll = document.createElement("div");
    scroll.className = "table-scroll"; // a wide table scrolls, not the page
    scroll.append(node);
    parent.append(scroll);
  } else {
    parent.append(node);
  }
  return node;
}

function appendInline(root, tokens, options) {
  const stack = [root];
  for (const token of tokens) {
    const parent = stack.at(-1);
    switch (token.type) {
      case "text":
      case "html_inline": // cannot occur with html off; as text if it did
        appendText(parent, token.content, options);
        break;
      case "code_inline": {
        const code = document.createElement("code");
        code.textContent = token.content;
        parent.append(code);
        break;
      }
      case "softbreak": // a single newline in a reply is meant as one (markdown-it's `breaks`)
      case "hardbreak":
        parent.append(document.createElement("br"));
        break;
      case "link_open": {
        const link = anchor(token.attrGet("href"), token.attrGet("title"));
        if (link) parent.append(link);
        stack.push(link ?? parent); // an unsafe target: the text without the link
        break;
      }
      case "image": {
        // Never fetched: shown as a link to the image, labelled by its alt text.
        const link = anchor(token.attrGet("src"), token.attrGet("title"));
        const label = document.createDocumentFragment();
        appendInline(label, token.children ?? [], options);
        if (link) {
          link.className = "image-link";
          link.append(label.childNodes.length ? label : link.href);
          parent.append(link);
        } else {
          parent.append(label);
        }
        break;
      }
      default:
        if (token.nesting === 1) {
          const node = document.createElement(INLINE_TAGS[token.tag] ?? "span");
          parent.append(node);
          stack.push(node);
        } else if (token.nesting === -1) {
          if (stack.length > 1) stack.pop();
        } else if (token.content) {
          parent.append(token.content);
        }
    }
  }
}

function anchor(target, title) {
  const href = target === null ? null : safeUrl(target);
  if (href === null) return null;
  const link = document.createElement("a");
  link.href = href;
  link.rel = "noopener noreferrer nofollow";
  link.target = "_blank";
  if (title) link.title = title;
  return link;
}

function codeBlock(text, info, { streaming }) {
  const word = (info ?? "").trim().split(/\s+/)[0];
  const language = LANGUAGE_NAME.test(word) ? word : "";
  const code = document.createElement("code");
  if (language) {
    code.className = `language-${language}`;
    code.dataset.language = language;
  }
  const known = language && hljs.getLanguage(language) ? language : "";
  let highlighted = null;
  if (known && text.length <= (streaming ? STREAMING_HIGHLIGHT_LIMIT : HIGHLIGHT_LIMIT)) {
    highlighted = hljs.highlight(text, { language: known, ignoreIllegals: true }).value;
  } else if (!language && !streaming && text.length <= AUTO_DETECT_LIMIT && text.trim()) {
    highlighted = hljs.highlightAuto(text).value;
  }
  const nodes = highlighted === null ? null : highlightedNodes(highlighted);
  if (nodes) {
    code.classList.add("hljs");
    code.append(nodes);
  } else {
    code.textContent = text;
  }
  const pre = document.createElement("pre");
  pre.append(code);
  pre.tabIndex = 0; // a long line scrolls sideways: reachable by keyboard

  const block = document.createElement("div");
  block.className = "code-block";
  const head = document.createElement("div");
  head.className = "code-head";
  const label = document.createElement("span");
  label.className = "code-language";
  label.textContent = language;
  head.append(label, copyButton(code));
  block.append(head, pre);
  return block;
}

const scratch = document.createElement("template");

/**
 * highlight.js's markup as nodes. It is the code's text, escaped, inside <span class="hljs-...">
 * only; parsed in an inert <template>, and used only if it is exactly that (else plain text).
 */
function highlightedNodes(html) {
  scratch.innerHTML = html;
  const content = scratch.content;
  const walker = document.createTreeWalker(content, NodeFilter.SHOW_ELEMENT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const onlyClass = node.attributes.length === 0 || (node.attributes.length === 1 && node.hasAttribute("class"));
    if (node.tagName !== "SPAN" || !onlyClass) return null;
  }
  return document.importNode(content, true);
}

function copyButton(code) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy-code";
  const hint = document.createElement("span");
  hint.className = "visually-hidden";
  hint.textContent = " code";
  button.append("Copy", hint); // named "Copy code"; shows "Copy"
  const status = document.createElement("span");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  let timer = 0;
  const say = (shown, announced) => {
    clearTimeout(timer);
    button.replaceChildren(shown);
    status.textContent = announced;
    timer = setTimeout(() => {
      button.replaceChildren("Copy", hint);
      status.textContent = "";
    }, COPIED_FOR_MS);
  };
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(code.textContent);
      say("Copied", "Code copied to the clipboard");
    } catch {
      // No clipboard (an insecure origin, or permission refused): select the code to copy by hand.
      getSelection()?.selectAllChildren(code);
      say("Selected", "Copying failed; the code is selected");
    }
  });
  const wrap = document.createDocumentFragment();
  wrap.append(button, status);
  return wrap;
}

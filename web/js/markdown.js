// Markdown for model replies, rendered as DOM nodes and never as an HTML string.
//
// Why not innerHTML plus a sanitizer: a reply is untrusted text, and building
// nodes with createElement/textContent makes any HTML in it plain text by
// construction. Links keep only http(s) and mailto targets; images are shown as
// links, so a reply cannot make the browser fetch anything by itself.
//
// Covers what chat replies use: headings, paragraphs, emphasis, inline code,
// fenced code blocks, lists (nested by indentation), block quotes, rules, tables
// and links. An unclosed code fence renders as code, so partial replies look
// right while they stream.

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST_ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$/;
const TABLE_DIVIDER = /^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *$/;

/** Renders Markdown text into a DocumentFragment of safe elements. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  appendBlocks(fragment, String(text).replace(/\r\n?/g, "\n").split("\n"));
  return fragment;
}

/** The URL if it is absolute and its scheme is one a link may use, else null. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(raw.trim());
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

function el(tag, ...children) {
  const node = document.createElement(tag);
  node.append(...children);
  return node;
}

function isBlank(line) {
  return line.trim() === "";
}

function startsBlock(line, next) {
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    QUOTE.test(line) ||
    LIST_ITEM.test(line) ||
    (line.includes("|") && next !== undefined && TABLE_DIVIDER.test(next) && next.includes("-"))
  );
}

function appendBlocks(parent, lines) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i += 1;
      continue;
    }
    let match;
    if ((match = FENCE.exec(line))) {
      i = appendCodeBlock(parent, lines, i, match);
    } else if ((match = HEADING.exec(line))) {
      const level = Math.min(match[1].length + 1, 6); // the page title is the h1
      parent.append(el(`h${level}`, ...inline(match[2] ?? "")));
      i += 1;
    } else if (RULE.test(line)) {
      parent.append(el("hr"));
      i += 1;
    } else if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && (match = QUOTE.exec(lines[i]))) {
        quoted.push(match[1]);
        i += 1;
      }
      const quote = el("blockquote");
      appendBlocks(quote, quoted);
      parent.append(quote);
    } else if (LIST_ITEM.test(line)) {
      i = appendList(parent, lines, i);
    } else if (line.includes("|") && TABLE_DIVIDER.test(lines[i + 1] ?? "") && lines[i + 1].includes("-")) {
      i = appendTable(parent, lines, i);
    } else {
      const paragraph = [line.trim()];
      i += 1;
      while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i], lines[i + 1])) {
        paragraph.push(lines[i].trim());
        i += 1;
      }
      const p = el("p");
      paragraph.forEach((text, n) => {
        if (n > 0) p.append(el("br"));
        p.append(...inline(text));
      });
      parent.append(p);
    }
  }
}

function appendCodeBlock(parent, lines, start, match) {
  const [, fence, language] = match;
  const body = [];
  let i = start + 1;
  while (i < lines.length) {
    const closing = lines[i].trim();
    if (closing.startsWith(fence[0].repeat(fence.length)) && /^([`~])\1*$/.test(closing)) {
      i += 1;
      break;
    }
    body.push(lines[i]);
    i += 1;
  }
  const code = el("code");
  code.textContent = body.join("\n");
  if (/^[\w+#.-]{1,32}$/.test(language)) {
    code.className = `language-${language}`;
    code.dataset.language = language;
  }
  parent.append(el("pre", code));
  return i;
}

function appendList(parent, lines, start) {
  const first = LIST_ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = el(ordered ? "ol" : "ul");
  const startNumber = ordered ? parseInt(first[2], 10) : 1;
  if (ordered && startNumber !== 1) list.start = startNumber;
  let i = start;
  while (i < lines.length) {
    const match = LIST_ITEM.exec(lines[i]);
    if (!match || match[1].length !== indent || /\d/.test(match[2]) !== ordered) break;
    const content = [match[3] ?? ""];
    const contentIndent = match[1].length + match[2].length + 1;
    i += 1;
    // The item's own lines: indented continuations (nested lists among them), and
    // blank lines only when the item goes on after them.
    while (i < lines.length) {
      const line = lines[i];
      const leading = line.length - line.trimStart().length;
      if (isBlank(line)) {
        const next = lines.slice(i).find((l) => !isBlank(l));
        if (next === undefined || next.length - next.trimStart().length < contentIndent) break;
        content.push("");
      } else if (leading > indent) {
        content.push(line.slice(Math.min(leading, contentIndent)));
      } else if (!startsBlock(line, lines[i + 1]) && leading === indent && content.at(-1) !== "") {
        content.push(line.trim()); // a lazy continuation of the item's paragraph
      } else {
        break;
      }
      i += 1;
    }
    const item = el("li");
    const inner = document.createDocumentFragment();
    appendBlocks(inner, content);
    // A tight item holds its text directly rather than in a paragraph.
    if (inner.childNodes.length >= 1 && inner.firstChild.tagName === "P" && !content.includes("")) {
      item.append(...inner.firstChild.childNodes);
      inner.firstChild.remove();
    }
    item.append(inner);
    list.append(item);
    // Blank lines between items keep the list going; before anything else they end it.
    let gap = i;
    while (gap < lines.length && isBlank(lines[gap])) gap += 1;
    const nextItem = gap < lines.length ? LIST_ITEM.exec(lines[gap]) : null;
    if (gap > i && !(nextItem && nextItem[1].length === indent)) break;
    i = gap;
  }
  parent.append(list);
  return i;
}

function tableCells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function appendTable(parent, lines, start) {
  const header = tableCells(lines[start]);
  const alignments = tableCells(lines[start + 1]).map((cell) =>
    cell.endsWith(":") ? (cell.startsWith(":") ? "center" : "right") : cell.startsWith(":") ? "left" : "",
  );
  const row = (cells, tag) =>
    el(
      "tr",
      ...header.map((_, n) => {
        const cell = el(tag, ...inline(cells[n] ?? ""));
        if (alignments[n]) cell.style.textAlign = alignments[n];
        if (tag === "th") cell.scope = "col";
        return cell;
      }),
    );
  const body = el("tbody");
  let i = start + 2;
  while (i < lines.length && lines[i].includes("|") && !isBlank(lines[i])) {
    body.append(row(tableCells(lines[i]), "td"));
    i += 1;
  }
  parent.append(el("div", el("table", el("thead", row(header, "th")), body)));
  parent.lastChild.className = "table-scroll";
  return i;
}

// Inline syntax, earliest match first. Each rule turns its match into nodes.
const INLINE_RULES = [
  { pattern: /\\([\\`*_{}[\]()#+\-.!|~<>])/, render: (m) => [m[1]] },
  {
    pattern: /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/,
    render: (m) => [codeSpan(m[2])],
  },
  {
    pattern: /!?\[((?:\\.|[^\]\\])*)\]\(\s*<?([^\s<>()]*(?:\([^\s()]*\)[^\s<>()]*)*)>?(?:\s+"[^"]*")?\s*\)/,
    render: (m) => [link(m[2], inline(m[1]), m[0].startsWith("!"))],
  },
  { pattern: /<((?:https?|mailto):[^\s<>]+)>/, render: (m) => [link(m[1], [m[1]])] },
  {
    pattern: /\bhttps?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]}*_~]/,
    render: (m) => [link(m[0], [m[0]])],
  },
  { pattern: /(\*\*|__)(?=\S)([\s\S]*?\S)\1/, render: (m) => [el("strong", ...inline(m[2]))] },
  { pattern: /~~(?=\S)([\s\S]*?\S)~~/, render: (m) => [el("del", ...inline(m[1]))] },
  { pattern: /\*(?=[^\s*])([\s\S]*?[^\s*])\*/, render: (m) => [el("em", ...inline(m[1]))] },
  { pattern: /(?<![\w])_(?=[^\s_])([\s\S]*?[^\s_])_(?![\w])/, render: (m) => [el("em", ...inline(m[1]))] },
];

function inline(text) {
  const nodes = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const rule of INLINE_RULES) {
      const match = rule.pattern.exec(rest);
      if (match && (best === null || match.index < best.match.index)) best = { rule, match };
    }
    if (best === null) {
      nodes.push(rest);
      break;
    }
    if (best.match.index > 0) nodes.push(rest.slice(0, best.match.index));
    nodes.push(...best.rule.render(best.match));
    rest = rest.slice(best.match.index + best.match[0].length);
  }
  return nodes;
}

function codeSpan(text) {
  const code = el("code");
  code.textContent = text.length > 2 && text.startsWith(" ") && text.endsWith(" ") ? text.slice(1, -1) : text;
  return code;
}

function link(target, children, isImage = false) {
  const href = safeUrl(target);
  if (href === null) return el("span", ...children); // inert: the text without the link
  const anchor = el("a", ...(children.length ? children : [href]));
  anchor.href = href;
  anchor.rel = "noopener noreferrer nofollow";
  anchor.target = "_blank";
  if (isImage) anchor.className = "image-link"; // never fetched: a reply cannot load a tracking pixel
  return anchor;
}

"""web/js/markdown.js in Chromium: speed on hostile input, XSS payloads, code blocks, streaming.

The module is imported into the page as `make dev` serves it (no test page, no build step):
the same file, the same CSP. Timings are measured in the page with performance.now() and
printed (`pytest -s` shows them); each bound is far above what the renderer needs and far
below what a renderer with quadratic or worse paths takes (the old one: 35 s on the first input).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dev_server import DevServer
from tests.e2e.conftest import collecting_dialogs, open_chat

LOAD_MODULE = """async () => {
  window.md = await import('/js/markdown.js');
  if (!document.querySelector('link[href$="markdown.css"]')) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = '/markdown.css';
    const loaded = new Promise((resolve) => { link.onload = resolve; });
    document.head.append(link);
    await loaded;
  }
  const box = document.createElement('div');
  box.id = 'md-test';
  box.className = 'content';
  document.querySelector('main').append(box);
}"""

# Renders text into #md-test; returns the milliseconds taken, layout included.
RENDER = """(text) => {
  const box = document.getElementById('md-test');
  const started = performance.now();
  box.replaceChildren(window.md.renderMarkdown(text));
  box.getBoundingClientRect();
  document.body.offsetHeight;
  return performance.now() - started;
}"""


@pytest.fixture
def md_page(page: Page, chat_server: DevServer) -> Page:
    open_chat(page, chat_server.base_url)
    page.evaluate(LOAD_MODULE)
    return page


def render(page: Page, text: str) -> float:
    return float(page.evaluate(RENDER, text))


# Inputs known to make Markdown parsers slow (quadratic or worse), each built at a scale:
# at 4 it is the full size (the issue's own input at 4 is 2,000 backslash-dots, 32,000 [).
HOSTILE: dict[str, Callable[[int], str]] = {
    "500 backslash-dots, 8,000 [ (issue 13)": lambda k: "\\." * (125 * k) + "[" * (2000 * k),
    "5,000 nested quotes": lambda k: ">" * (1250 * k) + " deep",
    "10,000 *": lambda k: "*" * (2500 * k),
    "10,000 _": lambda k: "_" * (2500 * k),
    "5,000 backticks": lambda k: "`" * (1250 * k),
    "backtick runs of every length": lambda k: "".join("`" * n + "a" for n in range(1, 75 * k)),
    "20,000 open emphasis": lambda k: "*a " * (5000 * k),
    "10,000 mixed emphasis": lambda k: "**a _b " * (2500 * k),
    "10,000 open links": lambda k: "[a](" * (2500 * k),
    "10,000 image openers": lambda k: "![[" * (2500 * k),
    "10,000 empty links then )": lambda k: "[](" * (2500 * k) + ")" * (2500 * k),
    "5,000 list markers on a line": lambda k: "- " * (1250 * k) + "x",
    "20,000 <": lambda k: "<" * (5000 * k),
    "a 5,000-column table": lambda k: "|a" * (1250 * k) + "\n" + "|-" * (1250 * k) + "\n" + "|b" * (1250 * k),
    "10,000 bare URLs": lambda k: "http://a. " * (2500 * k),
    "links inside emphasis inside links": lambda k: "[*[_[`x" * (1250 * k),
}


def fastest(page: Page, text: str, runs: int = 3) -> float:
    """The best of a few renders: what the renderer costs, without a GC pause or a busy core."""
    return min(render(page, text) for _ in range(runs))


def test_the_issues_input_renders_in_well_under_a_second(md_page: Page) -> None:
    render(md_page, "warm up *the* `parser`")
    took = render(md_page, "\\." * 500 + "[" * 8000)
    print(f"the issue's input: {took:.1f} ms (the old renderer: 35 s)")
    assert took < 1000, f"{took:.0f} ms"


@pytest.mark.parametrize("build", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_renders_in_linear_time(md_page: Page, build: Callable[[int], str]) -> None:
    """Four times the text in well under sixteen times the time (what a quadratic path takes).

    A ratio, not a bound in milliseconds: CI's machines are several times slower than this one,
    and a slower machine slows both sizes alike. Each size's best of three renders is compared,
    with a floor of a few milliseconds under which a timer measures noise.
    """
    render(md_page, "warm up *the* `parser`")
    quarter, full = fastest(md_page, build(1)), fastest(md_page, build(4))
    print(f"{len(build(4)):>7} chars: {full:7.1f} ms; a quarter of it: {quarter:6.1f} ms")
    assert full < 8 * max(quarter, 4), f"{quarter:.0f} ms, then {full:.0f} ms for four times the text"
    assert full < 10_000, f"{full:.0f} ms"  # the old renderer took 35 s on the issue's input
    assert md_page.locator("#md-test").inner_text(timeout=5000) is not None


XSS = {
    "script": "<script>window.__xss = 1</script>",
    "img onerror": '<img src=x onerror="window.__xss = 2">',
    "svg onload": '<svg onload="window.__xss = 3"></svg>',
    "raw html link": '<a href="javascript:window.__xss = 4">raw link</a>',
    "md javascript link": "[md link](javascript:window.__xss=5)",
    "upper-case scheme": "[upper](JAVASCRIPT:window.__xss=6)",
    "spaced scheme": "[spaced]( javascript:window.__xss=7)",
    "pointy scheme": "[pointy](<javascript:window.__xss=8>)",
    "data html": "[data](data:text/html,<script>window.__xss=9</script>)",
    "image javascript": "![img](javascript:window.__xss=10)",
    "image data": "![img](data:image/svg+xml,<svg onload='window.__xss=11'>)",
    "entity scheme": "[entity](jav&#x61;script:window.__xss=12)",
    "decimal entity scheme": "[entity2](&#106;avascript:window.__xss=13)",
    "escaped tab in scheme": "[tab](java&#9;script:window.__xss=14)",
    "vbscript": "[vb](vbscript:msgbox)",
    "file": "[file](file:///etc/passwd)",
    "reference javascript": "[ref link][evil]\n\n[evil]: javascript:window.__xss=15",
    "autolink javascript": "<javascript:window.__xss=16>",
    "autolink data": "<data:text/html,x>",
    "html in a fence": '```\n<img src=x onerror="window.__xss=17">\n```',
    "html in a fence's language": '```"><img src=x onerror=window.__xss=18>\ncode\n```',
    "html in a highlighted fence": (
        '```html\n<img src=x onerror="window.__xss=19"><script>window.__xss=20</script>\n```'
    ),
    "html in inline code": "`<img src=x onerror=window.__xss=21>`",
    "bold html": "**<img src=x onerror=window.__xss=22>**",
    "iframe": '<iframe src="javascript:window.__xss=23"></iframe>',
    "bare javascript": "javascript:window.__xss=24",
    "tracking pixel": "![pixel](https://tracker.invalid/pixel.png)",
    "protocol-relative": "[rel](//tracker.invalid/x) and //tracker.invalid/y",
    "relative": "[here](/api/chat/history) [frag](#x)",
    "empty": "[empty]() [blank](<>)",
    "fine links": "[ok](https://example.com/a?b=1&c=2) <https://example.org> <mailto:a@example.com>"
    " https://example.net/path",
}
SAFE_HREFS = [
    "https://tracker.invalid/pixel.png",
    "https://example.com/a?b=1&c=2",
    "https://example.org/",
    "mailto:a@example.com",
    "https://example.net/path",
]

CHECK_INERT = """(box) => ({
  xss: window.__xss ?? null,
  tags: [...box.querySelectorAll('script, img, svg, iframe, object, embed, style, link, form, input')]
    .map((n) => n.tagName),
  hrefs: [...box.querySelectorAll('[href], [src], [action], [formaction]')]
    .map((n) => n.getAttribute('href') ?? n.getAttribute('src') ?? n.getAttribute('action')),
  handlers: [...box.querySelectorAll('*')].flatMap((n) => [...n.attributes].map((a) => a.name))
    .filter((name) => name.startsWith('on') || name === 'style' || name === 'srcdoc'),
  text: box.textContent,
})"""


def _assert_inert(found: dict[str, Any]) -> None:
    assert found["xss"] is None, "a payload ran"
    assert found["tags"] == []
    assert found["hrefs"] == SAFE_HREFS
    assert found["handlers"] == []
    text = found["text"]
    for shown in (
        "<script>window.__xss = 1</script>",
        "<img src=x onerror=",
        "[md link](javascript:",
        "[here](/api/chat/history)",  # the parser refuses the link: it stays as written
        "[data](data:text/html,",
    ):
        assert shown in text  # HTML and refused links stay visible, as text


def test_xss_payloads_are_inert(md_page: Page) -> None:
    requests: list[str] = []
    md_page.on("request", lambda request: requests.append(request.url))
    text = "\n\n".join(XSS.values())
    with collecting_dialogs(md_page) as dialogs:
        render(md_page, text)
        _assert_inert(md_page.locator("#md-test").evaluate(CHECK_INERT))
        # The same text streamed (settled parts and the re-rendered tail), then finished.
        streamed = md_page.evaluate(
            """async (text) => {
              const box = document.getElementById('md-test');
              box.replaceChildren();
              const stream = new window.md.StreamingMarkdown(box);
              const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
              const seen = [];
              for (let end = 1; end <= text.length; end += 7) {
                stream.update(text.slice(0, end));
                if (end % 70 === 1) {
                  await frame();
                  seen.push(...[...box.querySelectorAll('a')].map((a) => a.getAttribute('href')));
                  seen.push(...[...box.querySelectorAll('img, script, iframe, svg')].map((n) => n.tagName));
                }
              }
              stream.finish(text);
              return seen;
            }""",
            text,
        )
        unsafe = [href for href in streamed if not str(href).startswith(("https://", "mailto:"))]
        assert unsafe == [], unsafe
        _assert_inert(md_page.locator("#md-test").evaluate(CHECK_INERT))
        for link in md_page.locator("#md-test a").all():
            expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
            expect(link).to_have_attribute("target", "_blank")
        md_page.wait_for_timeout(200)
    assert dialogs == []
    assert not any("tracker.invalid" in url for url in requests), "a reply made the browser fetch something"
    # An image is a link to it, labelled by its alt text.
    expect(md_page.locator("#md-test a.image-link")).to_have_text("pixel")


def test_a_highlighter_gone_wrong_cannot_inject_markup(md_page: Page) -> None:
    """highlight.js's markup is used only when it is spans with classes; anything else is text."""
    found = md_page.evaluate(
        """async () => {
          const hljs = (await import('/vendor/highlight.js')).default;  // the instance markdown.js uses
          const real = hljs.highlight;
          hljs.highlight = () => ({ value: '<img src=x onerror="window.__xss = 99"><span>x</span>' });
          const box = document.getElementById('md-test');
          try {
            box.replaceChildren(window.md.renderMarkdown('```python\\nx = 1\\n```'));
          } finally {
            hljs.highlight = real;
          }
          await new Promise((resolve) => setTimeout(resolve, 200));
          return { xss: window.__xss ?? null, imgs: box.querySelectorAll('img').length,
                   code: box.querySelector('code').textContent };
        }"""
    )
    assert found == {"xss": None, "imgs": 0, "code": "x = 1"}


def test_markdown_renders_as_commonmark(md_page: Page) -> None:
    render(
        md_page,
        "# Title\n\nSome **bold**, *em*, ~~gone~~, `code` and a [link](https://example.com/docs).\n"
        "line two\n\n3. three\n4. four\n   - nested\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n> quoted\n\n---\n\n"
        "[ref]\n\n[ref]: https://example.com/ref\n\n<div>\n*still Markdown* in <b>HTML</b>\n</div>",
    )
    box = md_page.locator("#md-test")
    expect(box.locator("h2")).to_have_text("Title")  # one level down: the page's title is the h1
    expect(box.locator("strong")).to_have_text("bold")
    expect(box.locator("em").first).to_have_text("em")
    expect(box.locator("s")).to_have_text("gone")
    expect(box.locator("p > code")).to_have_text("code")
    expect(box.locator("p").first.locator("br")).to_have_count(1)  # a single newline breaks the line
    expect(box.locator("ol")).to_have_attribute("start", "3")
    expect(box.locator("ol > li").nth(1).locator("ul > li")).to_have_text("nested")
    expect(box.locator(".table-scroll > table th")).to_have_text(["a", "b"])
    assert box.locator("td").nth(1).evaluate("td => td.style.textAlign") == "right"
    expect(box.locator("blockquote")).to_have_text("quoted")
    expect(box.locator("hr")).to_have_count(1)
    expect(box.get_by_role("link", name="ref")).to_have_attribute("href", "https://example.com/ref")
    # Raw HTML is off in the parser: tags are text, and Markdown between them is still parsed.
    expect(box.locator("p").last.locator("em")).to_have_text("still Markdown")
    expect(box.locator("p").last).to_contain_text("<div>")
    expect(box.locator("b, div div")).to_have_count(0)


CODE = 'def greet(name):\n    return f"Hello, {name}"  # a comment\n\n\nprint(greet("x"))'


def test_code_blocks_are_highlighted_in_light_and_dark(md_page: Page) -> None:
    render(md_page, f"Code:\n\n```python\n{CODE}\n```\n\n```\nplain text, no language\n```")
    block = md_page.locator("#md-test .code-block").first
    expect(block.locator(".code-language")).to_have_text("python")
    code = block.locator("pre > code.language-python.hljs")
    expect(code).to_have_text(CODE, use_inner_text=True)
    keyword = code.locator(".hljs-keyword").first
    expect(keyword).to_have_text("def")
    colour = "(n) => getComputedStyle(n).color"
    light = keyword.evaluate(colour)
    assert light != code.evaluate(colour), "keywords are not coloured"
    md_page.emulate_media(color_scheme="dark")
    dark = keyword.evaluate(colour)
    assert dark != light, "the dark theme does not change the highlight colours"
    md_page.emulate_media(color_scheme="light")
    # An unlabelled block: no language label, its text as written.
    plain = md_page.locator("#md-test .code-block").nth(1)
    expect(plain.locator(".code-language")).to_have_text("")
    expect(plain.locator("code")).to_have_text("plain text, no language")


def test_the_copy_button_copies_the_code_by_keyboard(md_page: Page, chat_server: DevServer) -> None:
    md_page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=chat_server.base_url)
    render(md_page, f"```python\n{CODE}\n```\n\n```\nsecond block\n```")
    buttons = md_page.get_by_role("button", name="Copy code")
    expect(buttons).to_have_count(2)
    first = buttons.first
    expect(first).to_have_accessible_name("Copy code")  # shows "Copy"; " code" is for screen readers
    first.focus()
    md_page.keyboard.press("Enter")
    expect(md_page.get_by_role("button", name="Copied")).to_be_visible()
    expect(md_page.locator("#md-test [role=status]").first).to_have_text("Code copied to the clipboard")
    assert md_page.evaluate("() => navigator.clipboard.readText()") == CODE
    # It goes back to "Copy" by itself, and the other block copies its own code.
    expect(first).to_have_accessible_name("Copy code", timeout=4000)
    second = md_page.locator("#md-test .copy-code").nth(1)
    second.click()
    expect(second).to_have_text("Copied")
    assert md_page.evaluate("() => navigator.clipboard.readText()") == "second block"


def test_code_highlighting_stays_fast(md_page: Page) -> None:
    """Highlighting has limits: a huge block stays plain, and only short blocks are auto-detected.

    What is checked is what the page did (the DOM), and the times against plain text of the same
    size measured in the same page, so a slower machine slows both alike.
    """
    render(md_page, "warm up")
    lines = "\n".join(f"def f{i}(x):\n    return x * {i}  # c" for i in range(6000))
    plain = fastest(md_page, lines[:90_000])
    labelled = fastest(md_page, f"```python\n{lines[:90_000]}\n```")
    expect(md_page.locator("#md-test code.hljs")).to_have_count(1)
    huge = render(md_page, f"```python\n{lines}\n```")
    expect(md_page.locator("#md-test code.hljs")).to_have_count(0)  # past the limit: plain text
    unlabelled = render(md_page, f"```\n{lines}\n```")
    expect(md_page.locator("#md-test code.hljs")).to_have_count(0)  # too large to auto-detect
    short = "\n".join(lines.splitlines()[:60])
    first = render(md_page, f"```\n{short}\n```")  # the first detection compiles every grammar
    detected = fastest(md_page, f"```\n{short}\n```")
    expect(md_page.locator("#md-test code.hljs")).to_have_count(1)  # the short block was detected
    print(
        f"90,000 chars: {plain:.0f} ms as a paragraph, {labelled:.0f} ms highlighted as python;"
        f" {len(lines)} chars: {huge:.0f} ms (plain), {unlabelled:.0f} ms unlabelled;"
        f" {len(short)} chars auto-detected: {first:.0f} ms the first time, {detected:.0f} ms after"
    )
    assert labelled < 20 * max(plain, 5), "highlighting costs far more than rendering the text"
    assert detected < 20 * max(plain, 5)
    assert max(labelled, huge, unlabelled, first) < 10_000


def ordinary_reply(size: int) -> str:
    """A long, ordinary reply: headings, paragraphs, lists, code, tables, quotes."""
    parts: list[str] = []
    n = 0
    while sum(map(len, parts)) < size:
        n += 1
        parts.append(
            f"## Step {n}\n\n"
            f"This step explains **part {n}** of the plan, with `inline_{n}()` code and a "
            f"[reference](https://example.com/docs/{n}). It goes on for a while so that the paragraph\n"
            f"wraps over more than one line, as *real replies* do.\n\n"
            f"1. first point of {n}\n2. second point\n   - a nested detail\n3. third point\n\n"
            f"```python\ndef step_{n}(items):\n    total = 0\n    for item in items:\n"
            f"        total += item * {n}\n\n    return total  # done\n```\n\n"
            f"| key | value |\n|-----|------:|\n| n | {n} |\n| twice | {2 * n} |\n\n"
            f"> A note on step {n}.\n\n- loose item\n\n- another loose item\n\n"
            f"```\nx = {n}\n\nprint(x)\n```\n\n"
        )
    return "".join(parts)[:size]


STREAM = """async ({ text, deltas, checks }) => {
  const box = document.getElementById('md-test');
  box.replaceChildren();
  const stream = new window.md.StreamingMarkdown(box);
  let ticks = 0;
  let streaming = true;
  const tick = () => { ticks += 1; if (streaming) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const task = () => new Promise((resolve) => setTimeout(resolve, 0));
  const fresh = (t) => {
    const d = document.createElement('div');
    d.append(window.md.renderMarkdown(t));
    return d.innerHTML;
  };
  // Mid-stream, a code block still in the unfinished tail is not auto-detected (that would run
  // every grammar on every frame): compare code blocks by their text, everything else exactly.
  const plainCode = (html) => {
    const d = document.createElement('div');
    d.innerHTML = html;
    for (const code of d.querySelectorAll('code')) {
      code.textContent = code.textContent;
      code.removeAttribute('class');
    }
    return d.innerHTML;
  };
  const step = Math.ceil(text.length / deltas);
  const mismatches = [];
  const started = performance.now();
  let sent = 0;
  for (let end = step; sent < deltas; end += step) {
    stream.update(text.slice(0, Math.min(end, text.length)));
    sent += 1;
    if (checks.includes(sent)) {
      await frame();
      await frame();
      // What is shown mid-stream is what rendering the text so far in one go shows.
      const now = text.slice(0, Math.min(end, text.length));
      if (plainCode(box.innerHTML) !== plainCode(fresh(now))) mismatches.push(sent);
    } else if (sent % 4 === 0) {
      await task();
    }
  }
  const beforeFinish = { ...stream.stats };
  stream.finish(text);
  streaming = false;
  const elapsed = performance.now() - started;
  return { ticks, elapsed, beforeFinish, after: { ...stream.stats }, mismatches,
           equal: box.innerHTML === fresh(text), nodes: box.querySelectorAll('*').length };
}"""


def test_a_long_reply_streams_without_reparsing_everything(md_page: Page) -> None:
    """A 100 KB reply in 1,000 deltas: each frame parses only the unfinished tail.

    The parse count is exact; the time is compared with rendering the whole reply once in the
    same page (re-parsing everything on every frame costs hundreds of times that).
    """
    text = ordinary_reply(100_000)
    render(md_page, "warm up")
    whole = fastest(md_page, text, runs=2)
    result = md_page.evaluate(STREAM, {"text": text, "deltas": 1000, "checks": [25, 333, 500, 750, 999]})
    stats = result["beforeFinish"]
    print(
        f"100 KB reply in 1,000 deltas: {stats['frames']} frames ({result['ticks']} animation frames),"
        f" {stats['parsedChars'] / len(text):.1f}x the text parsed, {stats['ms']:.0f} ms rendering"
        f" in {result['elapsed']:.0f} ms; finish: {result['after']['ms'] - stats['ms']:.0f} ms;"
        f" one-shot render {whole:.0f} ms"
    )
    assert result["equal"], "the finished DOM differs from renderMarkdown's"
    assert result["mismatches"] == [], f"mid-stream DOM differs from the text so far: {result['mismatches']}"
    assert 0 < stats["frames"] <= result["ticks"], "more renders than animation frames"
    assert stats["frames"] < 1000
    assert stats["parsedChars"] < 4 * len(text), "the whole reply was parsed again and again"
    assert stats["ms"] < 5 * whole, json.dumps(result)


def test_streaming_renders_once_per_frame_and_finish_is_synchronous(md_page: Page) -> None:
    result = md_page.evaluate(
        """async () => {
          const box = document.getElementById('md-test');
          box.replaceChildren();
          const stream = new window.md.StreamingMarkdown(box);
          const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
          let text = '';
          for (let i = 0; i < 100; i += 1) { text += `word${i} `; stream.update(text); }
          const beforeFrame = { frames: stream.stats.frames, html: box.innerHTML };
          await frame(); await frame();
          const afterFrame = { frames: stream.stats.frames, text: box.textContent.trim() };
          stream.update(text + '**more**');
          stream.finish(text + '**done**');  // cancels the pending frame
          const finished = box.innerHTML;
          await frame(); await frame();
          return { beforeFrame, afterFrame, finished, later: box.innerHTML, frames: stream.stats.frames };
        }"""
    )
    assert result["beforeFrame"] == {"frames": 0, "html": ""}
    assert result["afterFrame"]["frames"] == 1
    assert result["afterFrame"]["text"].endswith("word99")
    assert result["finished"].endswith("<strong>done</strong></p>")
    assert result["later"] == result["finished"], "a frame rendered after finish"
    assert result["frames"] == 1


def test_a_stream_that_changes_course_starts_again(md_page: Page) -> None:
    """Regenerated text that is not the old text grown replaces what was shown."""
    html = md_page.evaluate(
        """async () => {
          const box = document.getElementById('md-test');
          const stream = new window.md.StreamingMarkdown(box);
          const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
          stream.update('First paragraph.\\n\\nSecond paragraph.\\n');
          await frame(); await frame();
          stream.update('Other text.\\n\\nMore.\\n');
          await frame(); await frame();
          return box.innerHTML;
        }"""
    )
    assert html == "<p>Other text.</p><p>More.</p>"

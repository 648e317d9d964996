"""The README's screenshots of the chat page: desktop light and dark, and a phone with the drawer open.

Against a fresh `make dev` (a new browser profile, so no conversations yet):

    .venv/bin/python tests/tools/screenshots.py http://127.0.0.1:3000/ docs/screenshots
"""

from __future__ import annotations

import re
import sys
import time

from playwright.sync_api import Page, expect, sync_playwright

PLAN = """Here is a plan for the **Lisbon** trip:

1. Day one: *Alfama* and the castle
2. Day two: Belém, then a tram ride

```python
budget = {"hotel": 420, "food": 180}
print(sum(budget.values()))
```
[standin:echo=raw]"""


def fill(page: Page, url: str) -> None:
    """Three conversations, the last one renamed."""
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    for text in ["How do I read a CSV file in Python?", "Ideas for a birthday dinner", PLAN]:
        page.get_by_role("button", name="New chat").click()
        box = page.get_by_role("textbox", name="Message")
        box.fill(text)
        box.press("Enter")
        expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    page.get_by_role("button", name=re.compile("Options for Here is a plan")).click()
    page.get_by_role("textbox", name="Title").fill("Trip to Lisbon")
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page.get_by_role("heading", name="Trip to Lisbon")).to_be_visible()
    page.locator("#message").blur()


def main(url: str, folder: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        desktop = browser.new_context(viewport={"width": 1200, "height": 760}, color_scheme="light")
        page = desktop.new_page()
        fill(page, url)
        page.screenshot(path=f"{folder}/chat-page-light.png")
        page.emulate_media(color_scheme="dark")
        time.sleep(0.3)
        page.screenshot(path=f"{folder}/chat-page-dark.png")
        phone = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            storage_state=desktop.storage_state(),  # the same person, on their phone
        )
        small = phone.new_page()
        small.goto(page.url)
        expect(small.locator("body")).to_have_attribute("data-ready", "true")
        small.get_by_role("button", name="Show conversations").click()
        time.sleep(0.5)
        small.screenshot(path=f"{folder}/chat-page-phone.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

// TEMPORARY (deleted before merge): the StreamingMarkdown interface of the markdown branch over
// today's renderer, so the page runs until that branch lands.
import { renderMarkdown } from "./markdown.js";

export { renderMarkdown };

export class StreamingMarkdown {
  constructor(container) {
    this.container = container;
    this.frame = 0;
    this.text = "";
  }

  update(text) {
    this.text = text;
    this.frame ||= requestAnimationFrame(() => {
      this.frame = 0;
      this.container.replaceChildren(renderMarkdown(this.text));
    });
  }

  finish(text) {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.container.replaceChildren(renderMarkdown(text));
  }
}

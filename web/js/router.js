// Which conversation the page shows, kept in the URL's fragment: `#/c/<id>` names one, no fragment
// is a new chat. The fragment makes a conversation a link (for the same person: ids are the
// caller's own), restores it on reload, and lets Back and Forward move between conversations.
//
// A new chat gets its fragment only once the server keeps it (its first turn ended or was stopped), by
// replaceState: so a reload or a link never names a conversation that was never saved, and
// starting a new chat then writing in it is one history entry, not two.

const PREFIX = "#/c/";
const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A fresh conversation id: 16 random bytes, base64url (22 characters), as the API expects. */
export function newConversationId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** The conversation the URL names, or null (no fragment, or one that is not a conversation's). */
export function routedConversation() {
  const hash = window.location.hash;
  if (!hash.startsWith(PREFIX)) return null;
  let id;
  try {
    id = decodeURIComponent(hash.slice(PREFIX.length));
  } catch {
    return null;
  }
  return ID.test(id) ? id : null;
}

/** The link to a conversation, relative to the page. */
export function conversationHref(id) {
  return `${PREFIX}${encodeURIComponent(id)}`;
}

function pageWithout() {
  return `${window.location.pathname}${window.location.search}`;
}

/** New chat: a new history entry without a fragment (Back returns to the conversation before). */
export function pushNewChat() {
  if (window.location.hash) window.history.pushState(null, "", pageWithout());
}

/** The URL names `id` from now on, in place of what it named (no new history entry, no event). */
export function replaceWith(id) {
  if (routedConversation() === id && (id !== null || !window.location.hash)) return;
  window.history.replaceState(null, "", id === null ? pageWithout() : conversationHref(id));
}

/**
 * Calls `listener(id or null)` whenever the person moves to another URL in this page: a link to
 * a conversation, Back or Forward. Both events come for one fragment move; the listener is told
 * once, and only when the named conversation changed (`current()` says what is shown).
 */
export function onRouteChange(listener, current) {
  const changed = () => {
    const id = routedConversation();
    if (id !== current()) listener(id);
  };
  window.addEventListener("popstate", changed);
  window.addEventListener("hashchange", changed);
}

// `make dev` with sign-in: a real OpenID provider (node oidc-provider, OpenID-certified) on loopback.
//
// Not a token minter: the page signs in through the same authorization-code-with-PKCE flow,
// discovery document, JWKS and token endpoint as against Cognito or any other issuer, so the
// backend verifies these tokens exactly as it verifies a deployed issuer's. Everything is in
// memory (keys made at start, sessions, grants), nothing is fetched from the internet, and the
// provider exits when its standard input closes, so it never outlives `local/server.py`.
//
// Settings (environment): OIDC_HOST (127.0.0.1), OIDC_PORT (0: any free port), OIDC_CLIENT_ID,
// OIDC_AUDIENCE, OIDC_REDIRECT_URIS (comma-separated page URLs), OIDC_ACCESS_TOKEN_TTL (seconds).
// When it listens it prints one JSON line on stdout: issuer, clientId, audience, groupsClaim, users.

import { generateKeyPairSync, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

import Provider from "oidc-provider";

// The library prints its notices with console.info: they go to stderr, so stdout carries only the
// one line that says where the provider listens.
console.info = console.error;
console.log = console.error;

const HOST = process.env.OIDC_HOST || "127.0.0.1";
const PORT = Number.parseInt(process.env.OIDC_PORT || "0", 10);
const CLIENT_ID = process.env.OIDC_CLIENT_ID || "claude-chat-local";
const AUDIENCE = process.env.OIDC_AUDIENCE || "claude-chat-api";
// The resource indicator (RFC 8707) that stands for the chat API; its tokens carry `aud: AUDIENCE`.
const RESOURCE = "urn:claude-chat:api";
const GROUPS_CLAIM = "groups";
const ACCESS_TOKEN_TTL = Number.parseInt(process.env.OIDC_ACCESS_TOKEN_TTL || "3600", 10);
const REDIRECT_URIS = (process.env.OIDC_REDIRECT_URIS || "")
  .split(",")
  .map((uri) => uri.trim())
  .filter(Boolean);

// The test users: local development only, so their passwords are printed and shown on the form.
const USERS = {
  ada: { password: "lovelace", name: "Ada Lovelace", groups: [] },
  grace: { password: "hopper", name: "Grace Hopper", groups: ["pro"] },
};

function findUser(login) {
  return Object.hasOwn(USERS, login) ? USERS[login] : undefined;
}

function passwordMatches(user, password) {
  const given = Buffer.from(String(password));
  const wanted = Buffer.from(user.password);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

function escapeHtml(text) {
  return String(text).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

// One signing key per run, RS256 (what the backend accepts, with ES256), kept in memory only.
function signingKeys() {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  return { keys: [{ ...jwk, kid: randomBytes(8).toString("hex"), alg: "RS256", use: "sig" }] };
}

// No external fonts or scripts: the provider's own pages must work with no internet.
function page(title, body, status = 200) {
  return {
    status,
    html: `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: Canvas; }
  main { width: min(22rem, 90vw); padding: 1.5rem; border: 1px solid GrayText; border-radius: 0.75rem; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  label { display: block; margin: 0.75rem 0 0.25rem; font-weight: 600; }
  input { width: 100%; box-sizing: border-box; font: inherit; padding: 0.5rem; }
  button { font: inherit; padding: 0.5rem 1rem; margin-top: 1rem; cursor: pointer; }
  :focus-visible { outline: 3px solid Highlight; outline-offset: 2px; }
  .error { color: #b00020; font-weight: 600; }
  .hint { font-size: 0.9rem; opacity: 0.8; }
  .row { display: flex; gap: 0.5rem; align-items: baseline; justify-content: space-between; }
</style>
</head>
<body><main>${body}</main></body>
</html>`,
  };
}

function loginPage(uid, { login = "", error = "" } = {}) {
  const users = Object.entries(USERS)
    .map(([id, u]) => `<code>${id}</code> / <code>${u.password}</code>${u.groups.length ? ` (group ${u.groups.join(", ")})` : ""}`)
    .join(", ");
  return page(
    "Sign in: local provider",
    `<h1>Sign in to Claude chat</h1>
<p class="hint">Local development provider. Test users: ${users}.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="login">Username</label>
  <input id="login" name="login" required autocapitalize="none" autocomplete="username" value="${escapeHtml(login)}"${login ? "" : " autofocus"}>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required${login ? " autofocus" : ""}>
  <div class="row">
    <button type="submit">Sign in</button>
    <a href="/interaction/${escapeHtml(uid)}/abort">Cancel</a>
  </div>
</form>`,
    error ? 401 : 200,
  );
}

function send(res, { status, html }) {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    // No form-action: Chromium applies it to the redirects after the form too, and the last one
    // goes to the page (another origin).
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16_384) throw new Error("form too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function configuration() {
  return {
    clients: [
      {
        client_id: CLIENT_ID,
        client_name: "Claude chat (local)",
        application_type: "web",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: REDIRECT_URIS,
        post_logout_redirect_uris: REDIRECT_URIS,
      },
    ],
    jwks: signingKeys(),
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    claims: { openid: ["sub"], profile: ["name", "preferred_username"] },
    scopes: ["openid", "profile", "offline_access"],
    pkce: { required: () => true },
    // Our own login form (below); the library's dev interactions take any name and no password.
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page(
            "Sign out: local provider",
            `<h1>Sign out of Claude chat?</h1>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`,
          ).html;
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page("Signed out", "<h1>Signed out</h1><p>You can close this page.</p>").html;
        },
      },
      resourceIndicators: {
        enabled: true,
        // The page asks for no resource: every token it gets is for the chat API.
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
          return {
            scope: "chat",
            audience: AUDIENCE,
            accessTokenFormat: "jwt",
            accessTokenTTL: ACCESS_TOKEN_TTL,
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
    },
    // A public browser client renews with a (rotated) refresh token, not a hidden iframe, so the
    // page's CSP needs no frame-src and third-party cookie blocking does not matter.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    clientBasedCORS: (_ctx, origin, client) => client.redirectUris.some((uri) => new URL(uri).origin === origin),
    extraTokenClaims: async (_ctx, token) => {
      if (token.kind !== "AccessToken") return undefined;
      const user = findUser(token.accountId);
      return user?.groups.length ? { [GROUPS_CLAIM]: user.groups } : undefined;
    },
    findAccount: async (_ctx, id) => {
      const user = findUser(id);
      if (!user) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, name: user.name, preferred_username: id }) };
    },
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 86_400,
      Session: 86_400,
      Grant: 86_400,
    },
    renderError: async (ctx, out) => {
      const detail = Object.entries(out)
        .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</p>`)
        .join("");
      ctx.type = "html";
      ctx.body = page("Sign-in error", `<h1>Sign-in error</h1>${detail}`).html;
    },
  };
}

// The consent prompt of the first-party page is granted without asking: it is the operator's app.
async function grantConsent(provider, req, res, details) {
  const { prompt, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(" "));
  }
  await provider.interactionFinished(
    req,
    res,
    { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true },
  );
}

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, page("Sign-in error", "<h1>This sign-in has expired</h1>", 400));
  if (action === "abort") {
    const result = { error: "access_denied", error_description: "End-User aborted interaction" };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === "consent") return grantConsent(provider, req, res, details);
  if (details.prompt.name !== "login") return send(res, page("Sign-in error", "<h1>Not supported</h1>", 501));
  if (action !== "login" || req.method !== "POST") return send(res, loginPage(uid));
  const form = await formBody(req);
  const login = (form.get("login") ?? "").trim();
  const user = findUser(login);
  if (!user || !passwordMatches(user, form.get("password") ?? "")) {
    return send(res, loginPage(uid, { login, error: "Wrong username or password." }));
  }
  return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
}

function main() {
  const server = createServer();
  server.listen(PORT, HOST, () => {
    const { port } = server.address();
    const issuer = `http://${HOST}:${port}`;
    const provider = new Provider(issuer, configuration());
    const callback = provider.callback();
    server.on("request", (req, res) => {
      const match = /^\/interaction\/([\w-]+)(?:\/(login|abort))?$/.exec(new URL(req.url, issuer).pathname);
      if (!match) return callback(req, res);
      interaction(provider, req, res, match[1], match[2]).catch((error) => {
        if (!res.headersSent) send(res, page("Sign-in error", `<h1>Sign-in error</h1><p>${escapeHtml(error.message)}</p>`, 400));
        else res.end();
      });
    });
    const users = Object.entries(USERS).map(([login, u]) => ({ login, password: u.password, groups: u.groups }));
    process.stdout.write(
      `${JSON.stringify({ issuer, clientId: CLIENT_ID, audience: AUDIENCE, groupsClaim: GROUPS_CLAIM, users })}\n`,
    );
  });
  // The parent holds our stdin: when it exits (however it exits), so do we.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
}

main();

// Sign-in with the deployment's OpenID Connect provider: authorization code with PKCE (S256),
// by oidc-client-ts (web/vendor/, one ES module, `make vendor`). Loaded only when config.json
// names an issuer, so an anonymous page never fetches it.
//
// Tokens, and the PKCE verifier between the redirect and its return, are kept in this tab's
// sessionStorage: never localStorage, so they end with the tab and other tabs never see them.
// They are renewed before they expire with the refresh token (no hidden iframe, which the page's
// CSP would refuse and third-party cookie blocking would break).

import { UserManager, WebStorageStateStore } from "../vendor/oidc-client-ts.js";

const OAUTH_PARAMS = ["code", "state", "session_state", "iss", "error", "error_description", "error_uri"];

/** The page's own URL without the query: its redirect URI (the directory, so "/" and "/index.html" agree). */
function pageUrl() {
  return new URL(".", window.location.href).href;
}

export class Account {
  /**
   * @param {{issuer: string, clientId: string, scope?: string, logoutUrl?: string}} config
   */
  constructor({ issuer, clientId, scope, logoutUrl }) {
    this.clientId = clientId;
    this.logoutUrl = logoutUrl || null;
    const store = new WebStorageStateStore({ prefix: "claude-chat.oidc.", store: window.sessionStorage });
    this.manager = new UserManager({
      authority: issuer,
      client_id: clientId,
      redirect_uri: pageUrl(),
      post_logout_redirect_uri: pageUrl(),
      response_type: "code",
      scope: typeof scope === "string" && scope.trim() ? scope : "openid profile",
      userStore: store,
      stateStore: store,
      automaticSilentRenew: false, // renewed here instead, one renewal at a time (see renew)
      monitorSession: false, // its check-session iframe would need frame-src in the CSP
      loadUserInfo: false, // the ID token's claims are enough to say who is signed in
      ...(this.logoutUrl ? { metadataSeed: { end_session_endpoint: this.logoutUrl } } : {}),
    });
    this.user = null;
    this.renewing = null;
    this.listeners = new Set();
    this.manager.events.addUserLoaded((user) => this.#set(user));
    this.manager.events.addUserUnloaded(() => this.#set(null));
    // A minute before the access token expires (the library's default), a new one.
    this.manager.events.addAccessTokenExpiring(() => this.renew());
  }

  /**
   * Finishes a sign-in or sign-out that just came back to the page, then loads the tab's user.
   * Returns an error message when the provider answered with an error (the person cancelled, say).
   */
  async start() {
    const url = new URL(window.location.href);
    let problem = null;
    if (url.searchParams.has("state")) {
      try {
        if (url.searchParams.has("code") || url.searchParams.has("error")) {
          await this.manager.signinRedirectCallback(url.href);
        } else {
          await this.manager.signoutRedirectCallback(url.href);
        }
      } catch (error) {
        problem = url.searchParams.get("error") === "access_denied" ? "Sign-in was cancelled." : signInError(error);
      }
      for (const name of OAUTH_PARAMS) url.searchParams.delete(name);
      window.history.replaceState(window.history.state, "", url.href);
    }
    let user = await this.manager.getUser();
    if (user?.expired) user = await this.renew();
    this.#set(user);
    return problem;
  }

  get signedIn() {
    return this.user !== null;
  }

  /** Who is signed in, as a person would recognise it. */
  get displayName() {
    const profile = this.user?.profile ?? {};
    return profile.name || profile.preferred_username || profile.email || profile.sub || "";
  }

  /** The access token for the next API call, renewed first when it has expired; null when signed out. */
  async accessToken() {
    if (this.user?.expired) await this.renew();
    return this.user?.access_token ?? null;
  }

  /**
   * A new access token now (it is about to expire, or the API refused it); null when the sign-in
   * is over (no refresh token, or the provider refused it). Callers at the same moment share one
   * renewal: a refresh token is good for one use, so a second one in parallel would be refused.
   */
  renew() {
    this.renewing ??= this.manager
      .signinSilent()
      .catch(async () => {
        await this.expired();
        return null;
      })
      .finally(() => {
        this.renewing = null;
      });
    return this.renewing;
  }

  /** The sign-in is no longer good: forget it, so the page offers "Sign in" again. */
  async expired() {
    await this.manager.removeUser();
    this.#set(null);
  }

  /** Off to the provider's sign-in page; the page comes back signed in (see start). */
  signIn() {
    return this.manager.signinRedirect();
  }

  /**
   * Signs out here and at the provider (its end-session endpoint, which then sends the person back).
   * The refresh token is revoked first where the provider can; a provider without an end-session
   * endpoint still gets the tokens forgotten on this page. Cognito's `/logout` (config's logoutUrl)
   * wants `client_id` and `logout_uri` rather than the standard parameters.
   */
  async signOut() {
    try {
      await this.manager.revokeTokens(["refresh_token"]);
    } catch {
      // No revocation endpoint, or it refused: the tokens are forgotten below all the same.
    }
    try {
      const cognito = this.logoutUrl ? { client_id: this.clientId, extraQueryParams: { logout_uri: pageUrl() } } : {};
      await this.manager.signoutRedirect(cognito);
    } catch {
      // No end-session endpoint (or no metadata): the library has already forgotten the user by
      // then; this makes sure of it whatever failed.
      await this.expired();
    }
  }

  /** Calls `listener()` whenever someone signs in, renews or signs out. */
  onChange(listener) {
    this.listeners.add(listener);
  }

  #set(user) {
    const next = user && !user.expired ? user : null;
    const changed = (next?.profile?.sub ?? null) !== (this.user?.profile?.sub ?? null);
    this.user = next;
    if (changed) for (const listener of this.listeners) listener();
  }
}

function signInError(error) {
  const detail = typeof error?.error_description === "string" ? error.error_description : error?.message;
  return detail ? `Sign-in did not complete: ${detail}` : "Sign-in did not complete. Please try again.";
}

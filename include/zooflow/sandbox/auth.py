"""Sign-in and OAuth as Panoptes does them with Devise and Doorkeeper.

``panoptes-client`` logs in with a cookie session (``GET``/``POST /users/sign_in`` with a CSRF token)
and then asks ``/oauth/token`` for a bearer token *without* sending the password again: the token
endpoint trusts the session cookie. Refresh tokens are single-use the way Doorkeeper 4 rotates
them: a refresh issues a new token that remembers the old refresh token, and the first use of the
new token revokes the old one (access and refresh). From then on the old refresh token gets
``invalid_grant``, which is what breaks clients that refresh from several threads without a lock.
Token lifetimes run on the wall clock because that is what the client compares ``expires_in`` with.

Which user a bearer token stands for follows ``Api::ApiController``: the token is looked up by its
string alone (``doorkeeper_token``), so an expired or revoked token still acts as its user on every
action that does not call ``doorkeeper_authorize!`` (index, show, links, export describe), and an
unknown token is simply anonymous, so a private project answers 404, not 401. Only the actions a
controller lists in ``require_authentication`` (writes, export requests, retirement, ``/me``, the
classification reads) refuse a token that is not current, with Doorkeeper's empty 401. A
client-credentials token belongs to the OAuth application's owner (Panoptes'
``ClientCredentials::Creator`` patch), so it reads and writes as that user.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from zooflow.sandbox.db import Database
from zooflow.sandbox.settings import Settings
from zooflow.sandbox.web import ApiError, PlainError, Request, Response, Router, plain_json

SESSION_COOKIE = "_Panoptes_session"
SCOPES = "public user project group collection classification subject medium organization translation"
INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client.",
}
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method.",
}
NOT_LOGGED_IN = "You must be logged in to access this resource."
# Doorkeeper's invalid_token descriptions (Panoptes config/locales/doorkeeper.en.yml).
TOKEN_REVOKED, TOKEN_EXPIRED, TOKEN_UNKNOWN = (
    "The access token was revoked", "The access token expired", "The access token is invalid")
# Create, update and destroy: ``require_login`` runs before Doorkeeper, so no user means a JSON 401.
WRITES = (("POST", re.compile(r"/api/[a-z_]+")), ("PUT", re.compile(r"/api/[a-z_]+/[^/]+")),
          ("DELETE", re.compile(r"/api/[a-z_]+/[^/]+")))
# The other actions behind ``doorkeeper_authorize!`` (``require_authentication`` in the controllers).
AUTHORIZED = WRITES + (
    ("POST", re.compile(r"/api/(projects|workflows|subject_sets)/[^/]+/[a-z_]+_export")),
    ("POST", re.compile(r"/api/workflows/[^/]+/(retired|unretire)_subjects")),
    ("GET", re.compile(r"/api/me")),
    ("GET", re.compile(r"/api/classifications(/(?!gold_standard$)[^/]+)?")),
)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate.hex(), digest)


@dataclass(frozen=True)
class ApiUser:
    """Who is calling: a user id, or None for anonymous callers and unknown tokens."""

    user_id: int | None

    def require_login(self) -> int:
        if self.user_id is None:
            raise ApiError(401, NOT_LOGGED_IN)
        return self.user_id


class Auth:
    def __init__(self, db: Database, settings: Settings, now_epoch):
        self._db = db
        self._settings = settings
        self._now_epoch = now_epoch  # sandbox clock, for record timestamps only

    def register(self, router: Router) -> None:
        router.add("GET", "/users/sign_in", self.sign_in_form)
        router.add("POST", "/users/sign_in", self.sign_in)
        router.add("POST", "/oauth/token", self.token)

    # -- users and applications -------------------------------------------------------------

    def create_user(self, login: str, password: str, *, ip: str | None = None) -> int:
        """A new user, or a new password for an existing one; ``ip`` is where their classifications come from."""
        now = self._now_epoch()
        existing = self._db.one("SELECT id FROM users WHERE login = ?", (login,))
        if existing:
            self._db.update("users", existing["id"], {"password_hash": hash_password(password), "updated_at": now})
            return existing["id"]
        return self._db.insert("users", {
            "login": login, "display_name": login, "email": f"{login}@sandbox.invalid",
            "password_hash": hash_password(password), "ip": ip or f"198.51.100.{secrets.randbelow(254) + 1}",
            "created_at": now, "updated_at": now,
        })

    def ensure_application(self, name: str, uid: str, secret: str, owner_id: int) -> None:
        """An OAuth application; its client-credentials tokens act as ``owner_id``."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO oauth_applications (name, uid, secret, owner_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET name = excluded.name, secret = excluded.secret, "
                "owner_id = excluded.owner_id",
                (name, uid, secret, owner_id),
            )

    # -- cookie session --------------------------------------------------------------------

    def _session(self, request: Request):
        session_id = request.cookies.get(SESSION_COOKIE)
        return self._db.one("SELECT * FROM sessions WHERE id = ?", (session_id,)) if session_id else None

    def _new_session(self, user_id: int | None) -> tuple[str, str]:
        session_id, csrf = secrets.token_hex(32), secrets.token_urlsafe(32)
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO sessions (id, csrf_token, user_id, created_wall) VALUES (?, ?, ?, ?)",
                (session_id, csrf, user_id, time.time()),
            )
        return session_id, csrf

    @staticmethod
    def _cookie(session_id: str) -> tuple[str, str]:
        return ("Set-Cookie", f"{SESSION_COOKIE}={session_id}; path=/; HttpOnly; SameSite=Lax")

    def sign_in_form(self, request: Request) -> Response:
        session = self._session(request)
        session_id, csrf = (session["id"], session["csrf_token"]) if session else self._new_session(None)
        return plain_json(200, {"login": "/users/sign_in"}, [
            ("X-CSRF-Param", "authenticity_token"), ("X-CSRF-Token", csrf), self._cookie(session_id),
        ])

    def sign_in(self, request: Request) -> Response:
        body = request.json()
        session = self._session(request)
        token = body.get("authenticity_token") if isinstance(body, dict) else None
        if session is None or not isinstance(token, str) or not hmac.compare_digest(token, session["csrf_token"]):
            raise PlainError(422, {"error": "Can't verify CSRF token authenticity."})
        credentials = body.get("user") if isinstance(body.get("user"), dict) else {}
        login, password = credentials.get("login"), credentials.get("password")
        user = None
        if isinstance(login, str) and isinstance(password, str):
            user = self._db.one("SELECT * FROM users WHERE login = ? OR email = ?", (login, login))
        if user is None or not verify_password(password, user["password_hash"]):
            raise PlainError(401, {"error": "Invalid email or password."})
        session_id, csrf = self._new_session(user["id"])
        return plain_json(200, {"users": [{
            "id": str(user["id"]), "login": user["login"], "display_name": user["display_name"],
            "email": user["email"], "href": f"/users/{user['id']}", "links": {},
        }]}, [self._cookie(session_id), ("X-CSRF-Token", csrf)])

    # -- OAuth tokens ------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        form = request.form()
        grant = form.get("grant_type", "")
        request.detail = f"grant_type={grant}"
        if grant == "password":
            session = self._session(request)
            if session is None or session["user_id"] is None:
                raise PlainError(401, INVALID_GRANT)
            return self._issue(session["user_id"], form.get("client_id", ""), refreshable=True)
        if grant == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        if grant == "client_credentials":
            app = self._db.one("SELECT * FROM oauth_applications WHERE uid = ?", (form.get("client_id", ""),))
            if app is None:  # TokensController#allowed_grants: no such client, an empty 422
                raise PlainError(422, None)
            if not hmac.compare_digest(app["secret"], form.get("client_secret", "")):
                raise PlainError(401, INVALID_CLIENT)
            return self._issue(app["owner_id"], app["uid"], refreshable=False)
        raise PlainError(400, {
            "error": "unsupported_grant_type",
            "error_description": "The authorization grant type is not supported by the authorization server.",
        })

    def _refresh(self, refresh_token: str) -> Response:
        row = self._db.one("SELECT * FROM access_tokens WHERE refresh_token = ? AND revoked_wall IS NULL",
                           (refresh_token,))
        if row is None:
            raise PlainError(401, INVALID_GRANT)
        return self._issue(row["user_id"], row["application_uid"], refreshable=True, previous=refresh_token)

    def _issue(self, user_id: int | None, application_uid: str, *, refreshable: bool,
               previous: str | None = None) -> Response:
        created = time.time()
        lifetime = self._settings["token_lifetime"]
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32) if refreshable else None
        self._db.insert("access_tokens", {
            "token": access, "refresh_token": refresh, "user_id": user_id, "application_uid": application_uid,
            "created_wall": created, "expires_in": lifetime, "previous_refresh_token": previous,
        })
        payload = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime}
        if refresh:
            payload["refresh_token"] = refresh
        payload.update({"scope": SCOPES, "created_at": int(created)})
        return plain_json(200, payload, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    # -- bearer check for /api ---------------------------------------------------------------

    def api_user(self, request: Request) -> ApiUser:
        """The token's user, whether or not the token is current; anonymous without a known token.

        Doorkeeper-protected actions refuse a missing, unknown, expired or revoked token with an
        empty 401, except that a write by nobody at all gets ``require_login``'s JSON 401 first.
        """
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        row = None
        if scheme.lower() == "bearer":
            row = self._db.one("SELECT * FROM access_tokens WHERE token = ?", (token.strip(),))
        user = ApiUser(row["user_id"] if row else None)
        if row is not None and row["previous_refresh_token"]:
            self._revoke_previous(row)
        refusal = self._refusal(row)
        if refusal and _matches(AUTHORIZED, request) and not (user.user_id is None and _matches(WRITES, request)):
            raise PlainError(401, None, [("WWW-Authenticate", f'Bearer realm="Panoptes", error="invalid_token", '
                                                              f'error_description="{refusal}"')])
        return user

    @staticmethod
    def _refusal(row) -> str | None:
        """Why Doorkeeper would not accept this token (``AccessToken#accessible?``), or None."""
        if row is None:
            return TOKEN_UNKNOWN
        if row["revoked_wall"] is not None:
            return TOKEN_REVOKED
        if time.time() >= row["created_wall"] + row["expires_in"]:
            return TOKEN_EXPIRED
        return None

    def _revoke_previous(self, row) -> None:
        """Doorkeeper revokes the refresh token a token was refreshed from on the new token's first use."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE access_tokens SET revoked_wall = ? WHERE refresh_token = ? AND revoked_wall IS NULL",
                (time.time(), row["previous_refresh_token"]),
            )
            conn.execute("UPDATE access_tokens SET previous_refresh_token = NULL WHERE id = ?", (row["id"],))


def _matches(actions: tuple, request: Request) -> bool:
    return any(method == request.method and path.fullmatch(request.path) for method, path in actions)

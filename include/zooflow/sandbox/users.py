"""``/api/users`` and ``/api/me``: enough of the user resource for ``User.me()`` and owner links."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from zooflow.sandbox.jsonapi import Filter, ResourceType, register_reads, single
from zooflow.sandbox.timeutil import iso_ms
from zooflow.sandbox.web import Request, Router

if TYPE_CHECKING:
    from zooflow.sandbox.app import Sandbox


class Users:
    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.resource = ResourceType(
            name="users", kind="user", table="users", visible="1", serialize=self.serialize,
            filters={"id": Filter("id IN ({})"), "login": Filter("login IN ({})")},
        )

    def register(self, router: Router) -> None:
        register_reads(router, self.resource, self.sb.db)
        router.add("GET", "/api/me", self.me)

    def me(self, request: Request):
        user_id = request.user.require_login()
        return single(self.resource, self.sb.db.one("SELECT * FROM users WHERE id = ?", (user_id,)), request)

    def serialize(self, row: sqlite3.Row, request: Request) -> dict:
        own = request.user is not None and request.user.user_id == row["id"]
        return {
            "id": str(row["id"]), "login": row["login"], "display_name": row["display_name"],
            "credited_name": row["display_name"], "email": row["email"] if own else None,
            "created_at": iso_ms(row["created_at"]), "updated_at": iso_ms(row["updated_at"]),
            "href": f"/users/{row['id']}", "avatar_src": None, "admin": False, "login_prompt": False,
            "links": {},
        }

    def owner_link(self, user_id: int) -> dict:
        row = self.sb.db.one("SELECT id, display_name FROM users WHERE id = ?", (user_id,))
        return {"id": str(user_id), "display_name": row["display_name"] if row else None, "type": "users",
                "href": f"/users/{user_id}"}

"""API keys: stored as sha256 hashes; the secret is shown once at creation and never again."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

from daemon.core.principal import Principal

KEY_PREFIX = "llm-"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    conn: Any, name: str, user: str, team: str | None, is_admin: bool
) -> tuple[str, dict[str, Any]]:
    """Insert a key on a blocking connection; returns (secret, listing row)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {
        "id": uuid.uuid4().hex[:12],
        "name": name,
        "key_hash": hash_key(secret),
        "prefix": secret[:10],
        "user": user,
        "team": team,
        "is_admin": int(is_admin),
        "created_at": time.time(),
    }
    conn.execute(
        "INSERT INTO api_keys (id, name, key_hash, prefix, user, team, is_admin, created_at)"
        " VALUES (:id, :name, :key_hash, :prefix, :user, :team, :is_admin, :created_at)",
        row,
    )
    del row["key_hash"]
    return secret, row


def list_keys(conn: Any) -> list[dict[str, Any]]:
    cursor = conn.execute(
        "SELECT id, name, prefix, user, team, is_admin, created_at, revoked_at"
        " FROM api_keys ORDER BY created_at"
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def revoke_key(conn: Any, name_or_id: str) -> bool:
    cursor = conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE (name = ? OR id = ?) AND revoked_at IS NULL",
        (time.time(), name_or_id, name_or_id),
    )
    return bool(cursor.rowcount)


async def find_principal(conn: Any, key_hash: str) -> Principal | None:
    """The active key with this hash (`hash_key` of its secret), as a principal."""
    async with conn.execute(
        "SELECT id, user, team, is_admin, name FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
        (key_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    return Principal(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None


async def find_key_id(conn: Any, name_or_id: str) -> str | None:
    """The id of the key with this name or id (revoked or not)."""
    async with conn.execute(
        "SELECT id FROM api_keys WHERE name = ? OR id = ?", (name_or_id, name_or_id)
    ) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None


async def active_key_count(conn: Any) -> int:
    async with conn.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def key_count(conn: Any) -> int:
    """Keys ever created, revoked ones included: while there is one, the daemon needs a key."""
    async with conn.execute("SELECT count(*) FROM api_keys") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def delete_key(conn: Any, name_or_id: str) -> bool:
    cursor = conn.execute("DELETE FROM api_keys WHERE name = ? OR id = ?", (name_or_id, name_or_id))
    return bool(cursor.rowcount)

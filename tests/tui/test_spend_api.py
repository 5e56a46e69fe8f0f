"""GET /admin/spend, which the spend screen reads, and the rollup (migration 0002) behind it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from daemon.app import prepare_database
from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_openai import FakeOpenAI
from tests.tui.conftest import FROZEN_NOW, live_profile, seed_rows, traces_api


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"window": "1y"}, "window"),
        ({"group_by": "key"}, "group_by"),
        ({"utc_offset": "90000"}, "utc_offset"),
        ({"now": "yesterday"}, "now"),
    ],
)
def test_bad_parameters_are_named(seeded_daemon: DaemonProcess, params: dict[str, str], param: str) -> None:
    response = httpx.get(f"{seeded_daemon.url}/admin/spend", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_spend_equals_the_trace_rows_for_every_window_and_grouping(
    seeded_daemon: DaemonProcess,
) -> None:
    for window in ("today", "7d", "30d"):
        for group_by in ("model", "user", "team"):
            params = {"window": window, "group_by": group_by, "now": repr(FROZEN_NOW), "utc_offset": "3600"}
            data = httpx.get(f"{seeded_daemon.url}/admin/spend", params=params).json()
            rows = await traces_api(seeded_daemon.url, since=repr(data["since"]), until=repr(data["until"]))
            field = {"model": "served_model"}.get(group_by, group_by)
            expected: dict[str, list[float]] = {}
            for r in rows:
                key = r[field] or ("(no team)" if group_by == "team" else "(none)")
                sums = expected.setdefault(key, [0, 0, 0.0])
                sums[0] += 1
                sums[1] += r["prompt_tokens"]
                sums[2] += r["cost_usd"]
            got = {g["key"]: [g["requests"], g["prompt_tokens"], g["cost_usd"]] for g in data["groups"]}
            assert got.keys() == expected.keys(), (window, group_by)
            for key, (requests, tokens, cost) in expected.items():
                assert got[key][:2] == [requests, tokens] and got[key][2] == pytest.approx(cost)
            assert data["totals"]["requests"] == len(rows) == sum(s["requests"] for s in data["series"])
            local_shadow = sum(r["shadow_cost_usd"] for r in rows)
            assert data["savings"]["local_serving_usd"] == pytest.approx(local_shadow)


def test_spend_needs_an_admin_key(fake_upstream: FakeOpenAI, new_daemon: DaemonProcess) -> None:
    new_daemon.profile.write_text(live_profile(fake_upstream.base_url))
    user_key = new_daemon.create_key("alice")
    admin_key = new_daemon.create_key("ops", "--admin")
    new_daemon.start()
    url = f"{new_daemon.url}/admin/spend"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": f"Bearer {user_key}"}).status_code == 403
    assert httpx.get(url, headers={"authorization": f"Bearer {admin_key}"}).status_code == 200


def test_the_rollup_follows_inserts_and_deletes(tmp_path: Path) -> None:
    db = tmp_path / "llmops.db"
    prepare_database(db)
    conn = sqlite3.connect(db)
    rows = seed_rows(60)
    columns = list(rows[0])
    conn.executemany(
        f"INSERT INTO traces ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})", rows
    )
    conn.execute("DELETE FROM traces WHERE user = 'bob'")
    conn.commit()
    for dim, column in (("model", "served_model"), ("user", "user")):
        rollup = dict(
            conn.execute("SELECT key, sum(requests) FROM spend_rollup WHERE dim = ? GROUP BY key", (dim,))
        )
        raw = dict(conn.execute(f"SELECT {column}, count(*) FROM traces GROUP BY 1"))
        assert rollup == raw
    cost = conn.execute("SELECT sum(cost_usd) FROM spend_rollup WHERE dim = 'team'").fetchone()[0]
    assert cost == pytest.approx(conn.execute("SELECT sum(cost_usd) FROM traces").fetchone()[0])

"""/admin/events streams one `trace` event per recorded trace, and feedback events."""

from __future__ import annotations

import threading

import httpx
import orjson

from tests.daemon_process import DaemonProcess


def test_events_stream_traces_and_feedback(gateway: DaemonProcess) -> None:
    events: list[tuple[str, dict]] = []
    connected = threading.Event()
    enough = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", gateway.url + "/admin/events", timeout=30) as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.append((kind, orjson.loads(line[6:])))
                    if len(events) >= 6:
                        enough.set()
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    ids = []
    for i in range(5):
        response = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "fake", "messages": [{"role": "user", "content": f"event {i}"}]},
        )
        ids.append(response.headers["x-llmops-trace-id"])
    rated = httpx.post(
        gateway.url + "/v1/feedback", json={"trace_id": ids[0], "score": 5, "comment": "great"}
    )
    assert rated.status_code == 201
    assert enough.wait(10)
    traces = [data for kind, data in events if kind == "trace"]
    assert [t["id"] for t in traces] == ids
    assert all(t["seq"] and t["served_model"] == "fake" and "request" not in t for t in traces)
    feedback = [data for kind, data in events if kind == "feedback"]
    assert (
        feedback[0]["trace_id"] == ids[0]
        and feedback[0]["score"] == 5.0
        and feedback[0]["rated_by"] == "local"
    )


def test_feedback_validation_and_storage(gateway: DaemonProcess) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "fake", "messages": [{"role": "user", "content": "rate me"}]},
    )
    trace_id = response.headers["x-llmops-trace-id"]
    assert (
        httpx.post(gateway.url + "/v1/feedback", json={"trace_id": trace_id, "score": 9}).status_code == 400
    )
    missing = httpx.post(gateway.url + "/v1/feedback", json={"trace_id": "tr_nope", "score": 1})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "trace_id"
    assert (
        httpx.post(gateway.url + "/v1/feedback", json={"trace_id": trace_id, "thumbs": "down"}).status_code
        == 201
    )
    row = httpx.get(f"{gateway.url}/admin/traces/{trace_id}").json()
    assert [(f["kind"], f["score"], f["rated_by"]) for f in row["feedback"]] == [("thumbs", -1.0, "local")]
    for bad in ({"score": 0}, {"score": -1}, {"thumbs": "sideways"}, {"score": 3, "thumbs": "up"}, {}):
        assert httpx.post(gateway.url + "/v1/feedback", json={"trace_id": trace_id, **bad}).status_code == 400
    assert (
        httpx.post(gateway.url + "/v1/feedback", json={"trace_id": trace_id, "score": 4}).status_code == 201
    )
    listed = httpx.get(f"{gateway.url}/admin/traces", params={"q": "rate me"}).json()["data"]
    assert [(r["id"], r["rating"]) for r in listed] == [(trace_id, 4.0)]  # the latest rating

"""Answers of a real daemon that tests/tui/experiment_traffic.py `populate`d (two versions of
summarize, one of classify, the experiment summary-wording started and 60 users' calls rated),
by path, with times moved to 20 minutes before FROZEN_NOW. Made by `record` there; the tests
check that they keep the shape of a real daemon's answers."""

from __future__ import annotations

from typing import Any

PROMPTS_ANSWERS: dict[str, Any] = {
    "/admin/prompts": {
        "object": "list",
        "data": [
            {
                "name": "classify",
                "version": 1,
                "hash": "3cae8c903feb0dd4b9e56e66dfd018e021fb0f2753dabc6aa1a44e6dcc18ad5a",
                "source": "api",
                "created_at": 1768487999.9483995,
                "created_by": "local",
                "variables": ["ticket"],
                "description": "Route a ticket to a team",
                "model": None,
                "versions": 1,
                "labels": {"latest": 1},
            },
            {
                "name": "summarize",
                "version": 2,
                "hash": "42ebd6160ff649ac1fd9b92383e35ba41c0fd173a41f3b8e11eda8f259783222",
                "source": "api",
                "created_at": 1768487999.9448903,
                "created_by": "local",
                "variables": ["ticket"],
                "description": "A short summary of a support ticket",
                "model": None,
                "versions": 2,
                "labels": {"latest": 2, "production": 1, "staging": 2},
            },
        ],
    },
    "/admin/prompts/classify": {
        "object": "prompt",
        "name": "classify",
        "labels": {"latest": 1},
        "moves": [
            {"label": "latest", "version": 1, "previous": None, "at": 1768487999.948429, "by": "local"}
        ],
        "experiment": None,
        "latest": {
            "name": "classify",
            "version": 1,
            "hash": "3cae8c903feb0dd4b9e56e66dfd018e021fb0f2753dabc6aa1a44e6dcc18ad5a",
            "source": "api",
            "created_at": 1768487999.9483995,
            "created_by": "local",
            "variables": ["ticket"],
            "description": "Route a ticket to a team",
            "model": None,
            "messages": [{"role": "user", "content": "Which team handles this? {{ ticket }}"}],
            "params": {},
            "yaml": "name: classify\n"
            "messages:\n"
            "- role: user\n"
            "  content: Which team handles this? {{ ticket }}\n"
            "description: Route a ticket to a team\n",
        },
        "versions": [
            {
                "name": "classify",
                "version": 1,
                "hash": "3cae8c903feb0dd4b9e56e66dfd018e021fb0f2753dabc6aa1a44e6dcc18ad5a",
                "source": "api",
                "created_at": 1768487999.9483995,
                "created_by": "local",
                "variables": ["ticket"],
                "description": "Route a ticket to a team",
                "model": None,
                "usage": {
                    "version": 1,
                    "calls": 5,
                    "errors": 0,
                    "mean_latency_ms": 1.1939285999687854,
                    "cost_usd": 0.00019,
                    "mean_stars": None,
                    "stars": 0,
                    "thumbs_up_share": None,
                    "thumbs": 0,
                },
            }
        ],
    },
    "/admin/prompts/classify/versions/1": {
        "name": "classify",
        "version": 1,
        "hash": "3cae8c903feb0dd4b9e56e66dfd018e021fb0f2753dabc6aa1a44e6dcc18ad5a",
        "source": "api",
        "created_at": 1768487999.9483995,
        "created_by": "local",
        "variables": ["ticket"],
        "description": "Route a ticket to a team",
        "model": None,
        "messages": [{"role": "user", "content": "Which team handles this? {{ ticket }}"}],
        "params": {},
        "yaml": "name: classify\n"
        "messages:\n"
        "- role: user\n"
        "  content: Which team handles this? {{ ticket }}\n"
        "description: Route a ticket to a team\n",
    },
    "/admin/prompts/summarize": {
        "object": "prompt",
        "name": "summarize",
        "labels": {"latest": 2, "production": 1, "staging": 2},
        "moves": [
            {"label": "staging", "version": 2, "previous": None, "at": 1768487999.9449246, "by": "local"},
            {"label": "latest", "version": 2, "previous": 1, "at": 1768487999.9449084, "by": "local"},
            {"label": "production", "version": 1, "previous": None, "at": 1768487999.9396842, "by": "local"},
            {"label": "latest", "version": 1, "previous": None, "at": 1768487999.9396183, "by": "local"},
        ],
        "experiment": {"name": "summary-wording", "state": "ab", "label": "production"},
        "latest": {
            "name": "summarize",
            "version": 2,
            "hash": "42ebd6160ff649ac1fd9b92383e35ba41c0fd173a41f3b8e11eda8f259783222",
            "source": "api",
            "created_at": 1768487999.9448903,
            "created_by": "local",
            "variables": ["ticket"],
            "description": "A short summary of a support ticket",
            "model": None,
            "messages": [
                {
                    "role": "system",
                    "content": "You summarise support tickets in one sentence, for an engineer.",
                },
                {
                    "role": "user",
                    "content": "Ticket:\n{{ ticket }}\n\nOne sentence: what is wrong, and for whom?",
                },
            ],
            "params": {"temperature": 0.0, "max_tokens": 80},
            "yaml": "name: summarize\n"
            "messages:\n"
            "- role: system\n"
            "  content: You summarise support tickets in one sentence, "
            "for an engineer.\n"
            "- role: user\n"
            "  content: |-\n"
            "    Ticket:\n"
            "    {{ ticket }}\n"
            "\n"
            "    One sentence: what is wrong, and for whom?\n"
            "params:\n"
            "  temperature: 0.0\n"
            "  max_tokens: 80\n"
            "description: A short summary of a support ticket\n",
        },
        "versions": [
            {
                "name": "summarize",
                "version": 2,
                "hash": "42ebd6160ff649ac1fd9b92383e35ba41c0fd173a41f3b8e11eda8f259783222",
                "source": "api",
                "created_at": 1768487999.9448903,
                "created_by": "local",
                "variables": ["ticket"],
                "description": "A short summary of a support ticket",
                "model": None,
                "usage": {
                    "version": 2,
                    "calls": 30,
                    "errors": 0,
                    "mean_latency_ms": 1.1892083330167225,
                    "cost_usd": 0.00198,
                    "mean_stars": 4.666666666666667,
                    "stars": 24,
                    "thumbs_up_share": 1.0,
                    "thumbs": 6,
                },
            },
            {
                "name": "summarize",
                "version": 1,
                "hash": "21a9afb68f63d0c04ba308cc0640b735bbf0f199659f3b871d7138ece976db25",
                "source": "api",
                "created_at": 1768487999.9395292,
                "created_by": "local",
                "variables": ["ticket"],
                "description": "A short summary of a support ticket",
                "model": None,
                "usage": {
                    "version": 1,
                    "calls": 36,
                    "errors": 0,
                    "mean_latency_ms": 1.1426103891507309,
                    "cost_usd": 0.001296,
                    "mean_stars": 2.9615384615384617,
                    "stars": 26,
                    "thumbs_up_share": 0.5,
                    "thumbs": 10,
                },
            },
        ],
    },
    "/admin/prompts/summarize/versions/1": {
        "name": "summarize",
        "version": 1,
        "hash": "21a9afb68f63d0c04ba308cc0640b735bbf0f199659f3b871d7138ece976db25",
        "source": "api",
        "created_at": 1768487999.9395292,
        "created_by": "local",
        "variables": ["ticket"],
        "description": "A short summary of a support ticket",
        "model": None,
        "messages": [
            {"role": "system", "content": "You summarise support tickets."},
            {"role": "user", "content": "Summarise: {{ ticket }}"},
        ],
        "params": {"temperature": 0.2},
        "yaml": "name: summarize\n"
        "messages:\n"
        "- role: system\n"
        "  content: You summarise support tickets.\n"
        "- role: user\n"
        "  content: 'Summarise: {{ ticket }}'\n"
        "params:\n"
        "  temperature: 0.2\n"
        "description: A short summary of a support ticket\n",
    },
    "/admin/prompts/summarize/versions/2": {
        "name": "summarize",
        "version": 2,
        "hash": "42ebd6160ff649ac1fd9b92383e35ba41c0fd173a41f3b8e11eda8f259783222",
        "source": "api",
        "created_at": 1768487999.9448903,
        "created_by": "local",
        "variables": ["ticket"],
        "description": "A short summary of a support ticket",
        "model": None,
        "messages": [
            {"role": "system", "content": "You summarise support tickets in one sentence, for an engineer."},
            {
                "role": "user",
                "content": "Ticket:\n{{ ticket }}\n\nOne sentence: what is wrong, and for whom?",
            },
        ],
        "params": {"temperature": 0.0, "max_tokens": 80},
        "yaml": "name: summarize\n"
        "messages:\n"
        "- role: system\n"
        "  content: You summarise support tickets in one sentence, "
        "for an engineer.\n"
        "- role: user\n"
        "  content: |-\n"
        "    Ticket:\n"
        "    {{ ticket }}\n"
        "\n"
        "    One sentence: what is wrong, and for whom?\n"
        "params:\n"
        "  temperature: 0.0\n"
        "  max_tokens: 80\n"
        "description: A short summary of a support ticket\n",
    },
    "/admin/prompts/summarize/diff?from=1&to=2": {
        "object": "prompt.diff",
        "name": "summarize",
        "from": 1,
        "to": 2,
        "diff": "--- summarize@1\n"
        "+++ summarize@2\n"
        "@@ -1,9 +1,14 @@\n"
        " name: summarize\n"
        " messages:\n"
        " - role: system\n"
        "-  content: You summarise support tickets.\n"
        "+  content: You summarise support tickets in one "
        "sentence, for an engineer.\n"
        " - role: user\n"
        "-  content: 'Summarise: {{ ticket }}'\n"
        "+  content: |-\n"
        "+    Ticket:\n"
        "+    {{ ticket }}\n"
        "+\n"
        "+    One sentence: what is wrong, and for whom?\n"
        " params:\n"
        "-  temperature: 0.2\n"
        "+  temperature: 0.0\n"
        "+  max_tokens: 80\n"
        " description: A short summary of a support ticket\n",
    },
}

"""Agent event streams into transcripts: both shapes, garbage, and cut streams."""

import json

import pytest

from workspaces.transcript import Transcript, read_line

CURRENT = [
    {"type": "thread.started", "thread_id": "t1"},
    {"type": "turn.started"},
    {
        "type": "item.completed",
        "item": {"id": "i0", "type": "reasoning", "text": "Looking at the tests"},
    },
    {
        "type": "item.started",
        "item": {"id": "i1", "type": "command_execution", "command": "bash -lc ls"},
    },
    {"type": "item.completed", "item": {"id": "i1", "type": "command_execution", "exit_code": 0}},
    {
        "type": "item.completed",
        "item": {"id": "i2", "type": "agent_message", "text": "All tests pass."},
    },
    {"type": "turn.completed", "usage": {"input_tokens": 10}},
]
LEGACY = [
    {"id": "0", "msg": {"type": "task_started"}},
    {"id": "1", "msg": {"type": "exec_command_begin", "command": ["bash", "-lc", "ls"]}},
    {"id": "1", "msg": {"type": "exec_command_end", "exit_code": 2}},
    {"id": "2", "msg": {"type": "agent_message", "message": "Done."}},
    {"id": "3", "msg": {"type": "error", "message": "rate limited"}},
]


def lines(events):
    return "".join(json.dumps(e) + "\n" for e in events)


def test_the_current_shape():
    transcript = Transcript()
    transcript.feed(lines(CURRENT))
    kinds = [(e.kind, e.text) for e in transcript.entries]
    assert ("reasoning", "Looking at the tests") in kinds
    assert ("command", "$ bash -lc ls") in kinds and ("command", "(exit 0)") in kinds
    assert ("message", "All tests pass.") in kinds
    assert transcript.error == ""


def test_the_legacy_shape_wrapped_in_msg():
    transcript = Transcript()
    transcript.feed(lines(LEGACY))
    kinds = [(e.kind, e.text) for e in transcript.entries]
    assert ("command", "$ bash -lc ls") in kinds and ("command", "(exit 2)") in kinds
    assert ("message", "Done.") in kinds
    assert transcript.error == "rate limited"


def test_a_failed_turn_becomes_the_error():
    transcript = Transcript()
    transcript.feed(lines([{"type": "turn.failed", "error": {"message": "model not reachable"}}]))
    assert transcript.error == "model not reachable"


@pytest.mark.parametrize(
    "line",
    [
        "not json", "[1, 2]", "42", '{"type": "brand.new.event", "x": 1}',
        '{"msg": {"type": "mystery"}}',
        '{"type": "item.completed", "item": {"type": "unheard_of"}}',
        '{"type": "item.completed", "item": 5}',
        '{"type": "agent_message", "message": {"nested": [1]}}', "\x00\xff",
    ],
)  # fmt: skip
def test_garbage_and_unknown_shapes_are_kept_raw_never_a_crash(line):
    entries = read_line(line)
    assert len(entries) == 1 and entries[0].text


def test_a_stream_cut_mid_line_keeps_the_piece():
    transcript = Transcript()
    text = lines(CURRENT[:2]) + '{"type": "item.completed", "item": {"type": "agent_mes'
    first = transcript.feed(text[:30])
    rest = transcript.feed(text[30:])
    assert [e.kind for e in first + rest] == ["status", "status"]
    tail = transcript.close()
    assert tail[0].kind == "raw" and tail[0].text.endswith("agent_mes")


def test_events_split_across_reads_are_whole_again():
    transcript = Transcript()
    text = lines(CURRENT)
    for i in range(0, len(text), 7):
        transcript.feed(text[i : i + 7])
    transcript.close()
    assert [e.kind for e in transcript.entries].count("message") == 1


OPENCODE = [
    {"type": "step_start", "timestamp": 1, "sessionID": "s", "part": {"type": "step-start"}},
    {"type": "text", "timestamp": 2, "sessionID": "s", "part": {"type": "text", "text": "Hi."}},
    {
        "type": "tool_use",
        "timestamp": 3,
        "sessionID": "s",
        "part": {
            "type": "tool",
            "tool": "bash",
            "state": {"status": "completed", "title": "ls", "input": {"command": "ls"}},
        },
    },
    {"type": "step_finish", "timestamp": 4, "sessionID": "s", "part": {"reason": "stop"}},
]


def test_opencodes_shape():
    transcript = Transcript()
    transcript.feed(lines(OPENCODE))
    kinds = [(e.kind, e.text) for e in transcript.entries]
    assert ("message", "Hi.") in kinds and ("tool", "bash: ls") in kinds
    assert transcript.error == "" and not any(e.kind == "raw" for e in transcript.entries)


@pytest.mark.parametrize(
    "event, said",
    [
        (  # opencode: the sentence sits in error.data.message
            {"type": "error", "error": {"name": "APIError", "data": {
                "message": "Invalid API key", "statusCode": 401, "isRetryable": False}}},
            "Invalid API key",
        ),
        (
            {"type": "error", "error": {"name": "ProviderAuthError", "data": {
                "providerID": "anthropic", "message": "No credentials for anthropic"}}},
            "No credentials for anthropic",
        ),
        (  # opencode's UnknownError can be a whole object stringified
            {"type": "error", "error": {"name": "UnknownError", "data": {
                "message": json.dumps({"error": {"message": "socket hang up"}})}}},
            "socket hang up",
        ),
        (  # codex quoting a provider's JSON answer, with its trailers
            {"type": "turn.failed", "error": {"message": 'unexpected status 400 Bad Request: '
             '{"detail":"Instructions are not valid"}, url: https://x/y, cf-ray: 1'}},
            "unexpected status 400 Bad Request: Instructions are not valid",
        ),
        (
            {"type": "error", "error": {"name": "MessageOutputLengthError", "data": {}}},
            "The agent failed (MessageOutputLengthError) without saying why.",
        ),
    ],
)  # fmt: skip
def test_an_error_reads_as_its_sentence_never_as_json(event, said):
    transcript = Transcript()
    transcript.feed(lines([event]))
    assert transcript.error == said


def test_codex_retry_notices_and_warnings_are_not_the_turns_error():
    transcript = Transcript()
    transcript.feed(
        lines(
            [
                {"type": "error", "message": "Reconnecting... 2/5 (stream disconnected)"},
                {"type": "item.completed", "item": {"type": "error", "message": "slow down"}},
                {"type": "item.completed", "item": {"type": "agent_message", "text": "ok"}},
            ]
        )
    )
    kinds = [e.kind for e in transcript.entries]
    assert kinds == ["retry", "warning", "message"] and transcript.error == ""

"""Coding-agent event streams (JSON lines) read into a transcript a person can
follow: messages, tool calls, errors. codex's current shape of events
({"type": ..., "item": {...}}), its legacy one that wraps each event in a
"msg" object, and opencode's ({"type": "text" | "tool_use" | ..., "part":
{...}}) are understood; anything else is kept raw, never a crash. A stream
cut mid-line keeps its last, partial line raw.

An error reads as the sentence inside it, however deep the agent wrapped it
(opencode: error.data.message; codex: a message that quotes a provider's
JSON answer), never as raw JSON. codex's retry notices ("Reconnecting...
2/5") are kept as retries, not errors: they are not why a turn failed."""

import json
from dataclasses import dataclass, field

ERROR_TYPES = {"error", "turn.failed", "stream_error"}
RETRYING = "Reconnecting..."
# Where agents put the sentence inside an error, in the order to look.
MESSAGE_KEYS = ("message", "msg", "detail", "text", "error", "data", "cause")


@dataclass
class Entry:
    kind: str  # message, reasoning, command, output, tool, error, warning, retry, status, raw
    text: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text}


@dataclass
class Transcript:
    entries: list[Entry] = field(default_factory=list)
    _partial: str = ""

    def feed(self, text: str) -> list[Entry]:
        """Take more of the stream; returns the entries it completed."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        new = [entry for line in lines if line.strip() for entry in read_line(line)]
        self.entries += new
        return new

    def close(self) -> list[Entry]:
        """The stream ended: a last line without its newline is kept as it is."""
        rest, self._partial = self._partial, ""
        new = read_line(rest) if rest.strip() else []
        self.entries += new
        return new

    @property
    def error(self) -> str:
        """The last error the agent reported, for the run's error message."""
        errors = [e.text for e in self.entries if e.kind == "error"]
        return errors[-1] if errors else ""


def read_line(line: str) -> list[Entry]:
    try:
        event = json.loads(line)
    except ValueError:
        return [Entry("raw", line)]
    if not isinstance(event, dict):
        return [Entry("raw", line)]
    if isinstance(event.get("msg"), dict):  # the legacy shape
        event = event["msg"]
    try:
        read = _read_event(event)
    except (TypeError, ValueError, AttributeError, KeyError):
        read = None
    entries = read if isinstance(read, list) else [read] if read else []
    return entries or [Entry("raw", line)]


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return value.get("message") or value.get("text") or json.dumps(value)
    return "" if value is None else str(value)


def sentence(value, depth: int = 0) -> str:
    """The words inside an error: a string (unwrapped where it quotes a JSON
    answer), or the first message found in nested objects; "" if none."""
    if depth > 8:
        return ""
    if isinstance(value, str):
        text = value.strip()
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            try:
                quoted = json.loads(text[start : end + 1])
            except ValueError:
                return text
            inner = sentence(quoted, depth + 1)
            before = text[:start].rstrip(" :")
            return f"{before}: {inner}" if before and inner else inner or before or text
        return text
    if isinstance(value, dict):
        for key in MESSAGE_KEYS:
            found = sentence(value.get(key), depth + 1) if key in value else ""
            if found:
                return found
        return ""
    if isinstance(value, list):
        return next((found for item in value if (found := sentence(item, depth + 1))), "")
    return ""


def _error(event: dict, kind: str) -> Entry:
    detail = event.get("error") or event.get("message")
    words = sentence(detail)
    if words.startswith(RETRYING):
        return Entry("retry", words)
    if words:
        return Entry("error", words)
    name = detail.get("name") or detail.get("type") if isinstance(detail, dict) else ""
    return Entry("error", f"The agent failed ({name or kind}) without saying why.")


def _read_event(event: dict) -> Entry | list[Entry] | None:
    kind = event.get("type", "")
    item = event.get("item") if isinstance(event.get("item"), dict) else None
    part = event.get("part") if isinstance(event.get("part"), dict) else None
    if kind in ERROR_TYPES:
        return _error(event, kind)
    if item is not None:  # current shape: item.started / item.updated / item.completed
        return _read_item(kind, item)
    if part is not None:  # opencode: text, reasoning, tool_use, step_start, step_finish
        return _read_part(kind, part)
    if kind in ("agent_message", "assistant_message"):
        return Entry("message", _text(event.get("message") or event.get("text")))
    if kind in ("agent_reasoning", "reasoning"):
        return Entry("reasoning", _text(event.get("text") or event.get("message")))
    if kind == "exec_command_begin":
        return Entry("command", "$ " + _text(event.get("command")))
    if kind == "exec_command_end":
        code = event.get("exit_code")
        return Entry("command", f"(exit {code})" if code is not None else "(done)")
    if kind in ("mcp_tool_call_begin", "tool_call"):
        return Entry("tool", _text(event.get("invocation") or event.get("tool") or event))
    if kind in ("thread.started", "turn.started", "turn.completed", "task_started",
                "task_complete", "session_configured", "token_count", "done"):  # fmt: skip
        return Entry("status", kind)
    return None


def _read_part(kind: str, part: dict) -> Entry | list[Entry] | None:
    if kind == "text":
        return Entry("message", _text(part.get("text")))
    if kind == "reasoning":
        return Entry("reasoning", _text(part.get("text")))
    if kind == "tool_use":
        state = part.get("state") if isinstance(part.get("state"), dict) else {}
        title = f"{part.get('tool')}: {state.get('title') or _text(state.get('input'))}"
        if state.get("status") == "error":
            return Entry("tool", f"{title} (failed: {sentence(state.get('error'))})")
        output = _text(state.get("output"))
        return (
            [Entry("tool", title), Entry("output", output)]
            if output.strip()
            else Entry("tool", title)
        )
    if kind in ("step_start", "step_finish"):
        return Entry("status", kind)
    return None


def _read_item(kind: str, item: dict) -> Entry | list[Entry] | None:
    item_type = item.get("type") or item.get("item_type")
    if item_type in ("agent_message", "assistant_message"):
        if not kind.endswith("completed"):
            return Entry("status", f"{item_type} …")
        return Entry("message", _text(item.get("text") or item.get("message")))
    if item_type == "reasoning":
        return Entry("reasoning", _text(item.get("text")))
    if item_type == "command_execution":
        if kind.endswith("started"):
            return Entry("command", "$ " + _text(item.get("command")))
        code = item.get("exit_code")
        done = Entry("command", f"(exit {code})" if code is not None else "(done)")
        output = _text(item.get("aggregated_output"))
        return [Entry("output", output), done] if output.strip() else done
    if item_type in ("mcp_tool_call", "tool_call", "file_change", "web_search"):
        detail = item.get("tool") or item.get("changes") or item.get("query") or ""
        return Entry("tool", f"{item_type}: {_text(detail)}")
    if item_type == "error":  # codex: a warning it went on after
        words = sentence(item.get("message"))
        return Entry("retry" if words.startswith(RETRYING) else "warning", words)
    return None

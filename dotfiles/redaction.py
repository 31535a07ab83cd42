"""A secret's value printed by a command is stored as *** instead, as CI
systems do: in run output, agent transcripts and dotfiles logs. Values
shorter than MIN_LENGTH are left alone (masking every "1" or "on" would make
output unreadable and hide nothing)."""

import json
import re

from dotfiles.models import Secret

MASK = "***"
MIN_LENGTH = 4


class Redactor:
    """Masks the values in text that comes in pieces: a value split across
    two pieces is still masked, because the end of a piece that could be the
    start of a value is held back, unmasked, until the next piece (or flush)
    shows. Each value is masked as printed and as JSON escapes it (agents
    print JSON: a key's line breaks come as \\n there)."""

    def __init__(self, values):
        forms = set()
        for value in values:
            forms |= {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
        # Longest first: at each place the longest value that matches is masked whole.
        self.values = sorted((v for v in forms if len(v) >= MIN_LENGTH), key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, self.values))) if self.values else None
        self.held = ""

    @classmethod
    def for_user(cls, user_id: int) -> "Redactor":
        return cls(Secret.values_of(user_id).values())

    def redact(self, text: str) -> str:
        return self.pattern.sub(MASK, text) if self.pattern else text

    def feed(self, piece: str) -> str:
        """What of the text so far can be stored now, masked."""
        if self.pattern is None:
            return piece
        text = self.held + piece
        cut = len(text) - self._could_begin_a_value(text)
        for match in self.pattern.finditer(text):
            if match.start() < cut < match.end():
                cut = match.end()  # a whole value across the cut goes out whole
        self.held = text[cut:]
        return self.redact(text[:cut])

    def pending(self) -> str:
        """What is held back, masked, without letting go of it."""
        return self.redact(self.held)

    def flush(self) -> str:
        rest, self.held = self.pending(), ""
        return rest

    def _could_begin_a_value(self, text: str) -> int:
        """How many characters at the end of text are the start of a value."""
        longest = 0
        for value in self.values:
            start = max(len(text) - len(value) + 1, 0)
            at = text.find(value[0], start)
            while at != -1:
                if value.startswith(text[at:]):
                    longest = max(longest, len(text) - at)
                    break
                at = text.find(value[0], at + 1)
        return longest

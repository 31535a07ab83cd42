"""A secret's value printed by a command is stored as *** instead, as CI
systems do: in run output, agent transcripts and dotfiles logs. Values
shorter than MIN_LENGTH are left alone (masking every "1" or "on" would make
output unreadable and hide nothing)."""

from dotfiles.models import Secret

MASK = "***"
MIN_LENGTH = 4


class Redactor:
    """Masks the values in text that comes in pieces: a value split across
    two pieces is still masked, because the end of a piece that could be the
    start of a value is held back until the next piece (or flush) shows."""

    def __init__(self, values):
        # Longest first, so a value containing another is masked whole.
        self.values = sorted({v for v in values if len(v) >= MIN_LENGTH}, key=len, reverse=True)
        self.held = ""

    @classmethod
    def for_user(cls, user_id: int) -> "Redactor":
        return cls(Secret.values_of(user_id).values())

    def redact(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def feed(self, piece: str) -> str:
        """What of the text so far can be stored now, masked."""
        text = self.redact(self.held + piece)
        keep = self._could_begin_a_value(text)
        self.held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        rest, self.held = self.held, ""
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

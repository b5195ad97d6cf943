"""Making untrusted text safe to show on a terminal.

Task descriptions, step errors, log lines and even directory names come from agents and other programs; an escape
sequence among them must be shown, never obeyed by the terminal, and a newline must not forge an extra line.
"""

from __future__ import annotations

# C0 controls, DEL and C1 controls, written as visible escapes; tab is kept as a plain space.
_ESCAPES: dict[int, str] = {
    code: {0x0A: "\\n", 0x0D: "\\r", 0x09: " "}.get(code, f"\\x{code:02x}")
    for code in [*range(0x20), *range(0x7F, 0xA0)]
}
# The bidirectional embedding/override/isolate controls reorder what follows them on screen (a "Trojan Source" text
# can make `rm -rf ~ # safe` read as something else), and the line/paragraph separators start a new line in some
# terminals and viewers: all are shown as \uXXXX escapes too.
_ESCAPES.update({code: f"\\u{code:04x}" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]})


def printable(text: str) -> str:
    """Return ``text`` with every control character replaced by a visible escape such as ``\\x1b`` or ``\\n``.

    Args:
        text: Any text, possibly written by another program.

    Returns:
        One line of text that a terminal displays literally.
    """
    return text.translate(_ESCAPES)

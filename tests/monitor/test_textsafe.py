"""Web text shown in a terminal cannot recolour, retitle, clear or reorder it."""
from models.textsafe import terminal_safe


def test_escape_sequences_and_bidi_overrides_are_removed():
    hostile = "ok\x1b[31mred\x1b[0m \x1b]0;pwned\x07title \x1b[2Jclear \u202eevil\u202c \x00\x08bell\x07"
    assert terminal_safe(hostile) == "okred title clear evil bell"


def test_line_structure_is_kept_and_a_lone_carriage_return_becomes_a_break():
    assert terminal_safe("line one\r\nline two\rline three\tend") == "line one\nline two\nline three\tend"


def test_long_text_is_cut_with_an_ellipsis():
    assert terminal_safe("a" * 50, limit=10) == "a" * 9 + "…"
    assert terminal_safe(None) == ""

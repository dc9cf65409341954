"""Body previews made readable: JSON pretty and typed, text as is, binary as a hex dump."""

import base64

import pytest

from flows.live.body import Token, decode_body, hex_dump, human_size, json_tokens


@pytest.mark.parametrize(
    ("body", "kind", "text"),
    [
        ({"preview": '{"a":1}', "encoding": "json", "size": 7}, "json", '{\n  "a": 1\n}'),
        ({"preview": "[1, 2]", "encoding": "json", "size": 6}, "json", "[\n  1,\n  2\n]"),
        ({"preview": '"é"', "encoding": "json", "size": 4}, "json", '"é"'),
        ({"preview": "hello", "encoding": "text", "size": 5}, "text", "hello"),
        (
            {"preview": "<script>x</script>", "encoding": "text", "size": 18},
            "text",
            "<script>x</script>",
        ),
        # Truncated JSON does not parse: shown as the text it is.
        (
            {"preview": '{"a": [1, 2', "encoding": "json", "size": 900, "truncated": True},
            "text",
            '{"a": [1, 2',
        ),
        # An unknown encoding is shown as text rather than failing.
        ({"preview": "abc", "encoding": "weird", "size": 3}, "text", "abc"),
        ({"preview": "not base64!", "encoding": "base64", "size": 9}, "text", "not base64!"),
        ({"preview": "", "encoding": "text", "size": 0}, "empty", ""),
        (None, "empty", ""),
    ],
)
def test_decoded_kind_and_text(body, kind, text):
    decoded = decode_body(body)
    assert decoded.kind == kind
    assert decoded.text == text


@pytest.mark.parametrize(
    ("body", "note_contains"),
    [
        ({"preview": '{"a": [1', "encoding": "json", "size": 900, "truncated": True}, "longer"),
        ({"preview": '{"a": [1', "encoding": "json", "size": 8}, "does not parse"),
        ({"preview": "%%%", "encoding": "base64", "size": 3}, "not valid base64"),
        ({"preview": "AAEC", "encoding": "base64", "size": 3}, "binary"),
    ],
)
def test_notes_say_what_happened(body, note_contains):
    assert note_contains in decode_body(body).note


def test_binary_body_becomes_a_hex_dump():
    data = bytes(range(20))
    decoded = decode_body(
        {"preview": base64.b64encode(data).decode(), "encoding": "base64", "size": 20}
    )
    assert decoded.kind == "hex"
    assert decoded.hex_lines == (
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|",
        "00000010  10 11 12 13                                       |....|",
    )


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"AB", "00000000  41 42" + " " * 43 + "  |AB|"),
        (b"<img>", "00000000  3c 69 6d 67 3e" + " " * 34 + "  |<img>|"),
        (b"\x7f\x80", "00000000  7f 80" + " " * 43 + "  |..|"),
    ],
)
def test_hex_dump_lines(data, line):
    assert hex_dump(data) == (line,)


@pytest.mark.parametrize(
    ("pretty", "tokens"),
    [
        (
            '{"k": "v"}',
            [
                ("punct", "{"),
                ("key", '"k"'),
                ("punct", ":"),
                ("", " "),
                ("string", '"v"'),
                ("punct", "}"),
            ],
        ),
        (
            "[true, null, -1.5e3]",
            [
                ("punct", "["),
                ("bool", "true"),
                ("punct", ","),
                ("", " "),
                ("null", "null"),
                ("punct", ","),
                ("", " "),
                ("number", "-1.5e3"),
                ("punct", "]"),
            ],
        ),
        ('"a\\"b"', [("string", '"a\\"b"')]),
    ],
)
def test_json_tokens(pretty, tokens):
    assert json_tokens(pretty) == tuple(Token(kind, text) for kind, text in tokens)


def test_json_tokens_rebuild_the_text():
    pretty = '{\n  "list": [1, "two", {"x": null}],\n  "ok": false\n}'
    assert "".join(token.text for token in json_tokens(pretty)) == pretty


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 1024 * 1024, "3.0 MiB")],
)
def test_human_size(size, text):
    assert human_size(size) == text

from __future__ import annotations

from dashboard.attributes import INLINE_MAX, Attribute, present_attributes


def test_short_values_stay_on_the_line():
    assert present_attributes({"n": 1, "ok": True, "who": "ada", "x": None}) == [
        Attribute("n", "1"),
        Attribute("ok", "true"),
        Attribute("who", "ada"),
        Attribute("x", "null"),
    ]
    assert present_attributes({"tags": ["a", "b"]}) == [Attribute("tags", '["a","b"]')]


def test_an_error_is_its_name_and_message_with_the_stack_in_a_block():
    (error,) = present_attributes(
        {"error": {"name": "E", "message": "boom", "stack": "s1\ns2", "code": 7}}
    )
    assert error == Attribute(
        "error", 'E: boom {"code":7}', block="s1\ns2", block_label="Stack trace"
    )
    (cause,) = present_attributes({"cause": {"message": "m", "stack": "s"}})
    assert (cause.text, cause.block_label) == ("m", "cause: stack trace")


def test_long_or_multi_line_values_are_cut_and_shown_whole_below():
    long = "x" * (INLINE_MAX + 10)
    (value,) = present_attributes({"blob": long})
    assert value.text == "x" * INLINE_MAX + " …" and value.block == long
    (obj,) = present_attributes({"obj": {"k": "v" * INLINE_MAX}})
    assert obj.block.startswith('{\n  "k": "vvv')
    assert present_attributes("not a dict") == []

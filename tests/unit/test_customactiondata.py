"""The CustomActionData codec: every mapping of strings survives a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msica.customactiondata import decode, encode

AWKWARD = {
    "semi": "a;b;;c;",
    "equals": "x=y==z",
    "leading": "=starts with equals",
    "empty": "",
    "newline": "line one\nline two\r\n",
    "unicode": "Grüße 東京 Ω 🎉",
    "arrows": "<=>",
    "more_arrows": "<<=>>=<=>;<=;>",
    "backslash": "C:\\Program Files\\app\\",
    "long": "λ;=\\" * 2500,
    "ends": "x;",
    "just": ";",
}


KEYS = st.from_regex(r"[A-Za-z0-9_.\-]+", fullmatch=True)
# Values rich in the characters that matter, and any text besides.
VALUES = st.text(alphabet=st.sampled_from(list(";=<>\\ \nab")) | st.characters()) | st.text()


@settings(deadline=None)  # correctness, not speed: CI machines are slow at times
@given(st.dictionaries(KEYS, VALUES))
def test_every_mapping_round_trips_and_never_shows_the_engine_separator(
    data: dict[str, str],
) -> None:
    text = encode(data)
    assert decode(text) == data
    assert "<=>" not in text  # the engine splits a deferred action's data there


def test_awkward_values_round_trip_and_plain_ones_read_plainly() -> None:
    assert decode(encode(AWKWARD)) == AWKWARD
    # What authors write by hand (and DTF writes) is read as they mean it:
    # a type 51 action inserting a Windows path leaves it intact.
    assert decode("INSTALLDIR=C:\\Program Files\\app\\;MODE=full;EMPTY=") == {
        "INSTALLDIR": "C:\\Program Files\\app\\", "MODE": "full", "EMPTY": "",
    }
    assert decode("A=x;") == {"A": "x"}  # a trailing separator is forgiven
    assert encode({"A": "1", "B": ""}) == "A=1;B="
    assert decode("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no equals here", "has no '='"),
        ("A=1;A=2", "names 'A' twice"),
        ("=value", "empty key"),
        ("A=1;junk", "'junk' has no '='"),
    ],
)
def test_malformed_text_is_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(text)


@pytest.mark.parametrize("key", ["", "a=b", "a;b", "a<", "with space"])
def test_keys_must_be_property_like_names(key: str) -> None:
    with pytest.raises(ValueError, match="must be a property-like name"):
        encode({key: "x"})


def test_the_engine_separator_is_escaped() -> None:
    assert encode({"A": "x<=>y"}) == "A=x<;=>y"
    assert decode("A=x<;=>y") == {"A": "x<=>y"}

"""Generic framed JSON and plain JSON detection (spec-free: the framing is the test)."""

from tests.diff.dialects.dialectkit import C, S, detected, diff, names


def ndjson(n: int = 2) -> list:
    return [
        C("go"),
        S('{"type":"a","n":1}\n{"type":"b","n":' + str(n) + "}\n"),
        S('data: {"x": 1}'),
    ]


def test_detected():
    assert detected(ndjson()) == "generic"
    assert detected([C({"type": "hello"}), S({"type": "welcome"})]) == "actioncable"
    # a chat's own welcome event, with data of its own, is plain JSON
    assert detected([S({"type": "welcome", "connection_id": "c"}), C({"type": "ask"})]) == "json"
    assert detected([S({"type": "data", "id": 1}), C({"type": "start", "id": 2})]) == "json"


def test_each_document_is_an_event():
    assert diff(ndjson(), ndjson()) == ("generic", [])
    assert names(diff(ndjson(), ndjson(3))[1]) == [("changed_value", "b", "n")]


def test_raw_override_compares_as_before():
    dialect, found = diff(ndjson(), ndjson(3), dialect="raw")
    assert dialect == "raw" and names(found) == [("changed_value", None, None)]


def test_text_noise_is_token_by_token():
    """A volatile token that varies between baseline runs hides only itself."""

    def text(token: str, word: str = "ready") -> list:
        return [C("hi"), S(f"session {token} is {word}")]

    noise = [text("0f3a9c2e77d1")]
    base, same, changed = text("1b2c3d4e5f60"), text("9a8b7c6d5e4f"), text("9a8b7c6d5e4f", "gone")
    assert diff(base, same, noise=noise)[1] == []
    found = diff(base, changed, noise=noise)[1]
    assert names(found) == [("changed_value", None, None)] and found[0].whole_text


def test_a_lone_token_is_noise_on_its_own():
    assert (
        diff([S("1b2c3d4e5f60aa")], [S("9a8b7c6d5e4fbb")], noise=[[S("0f3a9c2e77d1cc")]])[1] == []
    )


def test_integers_past_64_bits_are_compared_exactly():
    """orjson reads an integer past 64 bits as a float, which rounds two different
    ids to the same value: they must still differ (and equal ones stay equal)."""
    base = [S('{"type": "order", "id": 18446744073709551617}')]
    same = [S('{"type": "order", "id": 18446744073709551617}')]
    cand = [S('{"type": "order", "id": 18446744073709551618}')]
    assert diff(base, same)[1] == []
    assert names(diff(base, cand)[1]) == [("changed_value", "order", "id")]

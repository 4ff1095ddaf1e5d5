"""Scenario files: what is valid, and errors that name the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rocd.scenario import ScenarioError, load, load_text
from rocd.scenario._expr import ExpressionError, Undefined, evaluate, substitute, substitute_value
from rocd.scenario._load import LineIndex

GOOD = """\
description = "two nodes"

[nodes.a]
files = { "x.wav" = "chirp:1" }

[nodes.b]
config = { cluster = { rendezvous = true } }

[[steps]]
pair = ["a", "b"]

[[steps]]
node = "b"
call = "POST /peers/self/vads"
body = { name = "S", kind = "speaker" }
capture = { speaker = "body.uid" }

[[steps]]
node = "a"
call = "GET /peers/${b.uid}/vads/${speaker}"
expect = ["status == 200", "body.uid == ${speaker}"]
"""


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_text(text, "s.toml")
    return str(caught.value)


def test_a_valid_file_loads() -> None:
    scenario = load_text(GOOD)
    assert list(scenario.nodes) == ["a", "b"]
    assert scenario.nodes["b"].config == {"cluster": {"rendezvous": True}}
    assert [s.kind for s in scenario.steps] == ["pair", "call", "call"]
    assert scenario.steps[1].capture == {"speaker": "body.uid"}


def test_every_library_file_is_valid() -> None:
    files = sorted(Path("scenarios").glob("*.toml"))
    assert len(files) >= 8
    for file in files:
        load(file)


def test_a_wrong_type_names_its_line_and_field() -> None:
    text = GOOD.replace('call = "POST /peers/self/vads"', "call = 5")
    assert error_of(text) == "s.toml:14: steps[1].call: expected str | null, got int"


def test_an_unknown_key_names_its_line() -> None:
    text = GOOD.replace('node = "a"\n', 'node = "a"\nwithin = 3\n')
    assert error_of(text) == "s.toml:20: steps[2].within: no such field here"


def test_an_unknown_top_level_key_names_its_line() -> None:
    text = GOOD.replace('description = "two nodes"\n', 'description = "two nodes"\ntimout_s = 60\n')
    assert error_of(text) == "s.toml:2: timout_s: no such field here"


def test_a_missing_field_is_named() -> None:
    assert error_of(GOOD.replace('description = "two nodes"\n', "")) == (
        "s.toml: description: missing (it is required)"
    )


def test_a_node_config_is_checked_against_the_daemons_own_model() -> None:
    text = GOOD.replace(
        "config = { cluster = { rendezvous = true } }",
        'config = { cluster = { rendezvous = true }, api = { auht = "token" } }',
    )
    assert error_of(text) == "s.toml:7: nodes.b.config.api.auht: no such field here"
    text = GOOD.replace("rendezvous = true", 'rendezvous = "yes"')
    assert error_of(text) == "s.toml:7: nodes.b.config.cluster.rendezvous: expected bool, got str"


def test_invalid_toml_names_its_line() -> None:
    assert error_of(GOOD.replace("[nodes.b]", "[nodes.b")).startswith("s.toml:6: invalid TOML")


def test_toml_nested_too_deeply_is_invalid_not_a_crash() -> None:
    text = GOOD.replace('description = "two nodes"\n', 'description = "two nodes"\n'
                        "x = " + "[" * 3000 + "]" * 3000 + "\n")  # fmt: skip
    assert error_of(text) == "s.toml: invalid TOML: nested too deeply"


def test_a_step_does_one_thing() -> None:
    text = GOOD.replace('pair = ["a", "b"]', 'pair = ["a", "b"]\nsleep_s = 1')
    message = "s.toml:9: steps[0]: a step does one thing, this one has pair and sleep_s"
    assert error_of(text) == message
    text = GOOD.replace('pair = ["a", "b"]', 'name = "nothing"')
    assert "a step does exactly one thing: one of call, event" in error_of(text)


def test_a_value_captured_later_cannot_be_used_earlier() -> None:
    text = GOOD.replace('call = "POST /peers/self/vads"', 'call = "POST /x/${speaker}"')
    assert error_of(text) == (
        "s.toml:14: steps[1].call: ${speaker} is not captured by an earlier step"
    )


def test_unknown_nodes_and_node_properties() -> None:
    text = GOOD.replace('node = "a"', 'node = "c"')
    assert error_of(text) == "s.toml:19: steps[2].node: no node 'c' (there is a, b)"
    text = GOOD.replace("${b.uid}", "${b.colour}")
    assert "${b.colour} is not captured by an earlier step" in error_of(text)


def test_expressions_are_checked_when_loaded() -> None:
    text = GOOD.replace('"status == 200"', "\"__import__('os').system('x')\"")
    message = error_of(text)
    assert message.startswith("s.toml:21: steps[2].expect: ")
    assert "may be called" in message
    assert "not an expression" in error_of(GOOD.replace('"status == 200"', '"status = 200"'))


def test_names_in_expressions_are_checked_when_loaded() -> None:
    """A name an expression reads that its step will not have is an error at its line,
    with the field, the expression, and the likely name."""
    text = GOOD.replace('"status == 200"', '"statuss == 200"')
    assert error_of(text) == (
        "s.toml:21: steps[2].expect[0]: 'statuss == 200': no 'statuss' here"
        " (did you mean 'status'?; a call step has body, status)"
    )
    text = GOOD.replace('capture = { speaker = "body.uid" }', 'capture = { speaker = "bdy.uid" }')
    assert error_of(text).startswith(
        "s.toml:16: steps[1].capture.speaker: 'bdy.uid': no 'bdy' here (did you mean 'body'?"
    )
    metrics = (
        '[[steps]]\nnode = "a"\nmetrics = "${speaker}"\n'
        'expect = ["received > 300", "recieved > 300"]\n'
    )
    assert error_of(GOOD + metrics) == (
        "s.toml:25: steps[3].expect[1]: 'recieved > 300': no 'recieved' here"
        " (did you mean 'received'?)"
    )
    # A sender's end has no latency_ms; it has rtt_ms, and its own short names.
    sender = metrics.replace("received > 300", "sent > 0 and fec_sent > 0 and rtt_ms < 50")
    assert "no 'latency_ms' here" in error_of(
        GOOD + sender.replace('"recieved > 300"', '"latency_ms < 50"') + 'role = "sender"\n'
    )
    load_text(GOOD + sender.replace(', "recieved > 300"', "") + 'role = "sender"\n')
    event = (
        '[[steps]]\nnode = "b"\nevent = "stream.state"\n'
        'until = ["subject == ${speaker}", "dat.state == \'active\'"]\n'
    )
    assert error_of(GOOD + event).startswith(
        "s.toml:25: steps[3].until[1]: \"dat.state == 'active'\": no 'dat' here (did you mean "
        "'data'?; an event step has data, kind, peer, seq, subject, time)"
    )
    # Names that are there: constants, functions, every kind's own.
    fine = (
        '[[steps]]\nnode = "a"\nrun = "true"\nexpect = ["status == 0", "len(output) >= 0"]\n'
        '[[steps]]\nnode = "a"\nmetrics = "${speaker}"\n'
        'expect = ["state != null and lost == 0 and max(packetsLost, 0) < inf"]\n'
    )
    load_text(GOOD + fine)
    # A step that checks nothing cannot be given something to check.
    assert error_of(GOOD.replace('pair = ["a", "b"]', 'pair = ["a", "b"]\nexpect = ["x"]')) == (
        "s.toml:11: steps[0].expect: only call, event, metrics, audio and run steps check expect"
    )


def test_links_need_namespaces_and_known_profiles() -> None:
    link = '[[links]]\nfrom = "a"\nto = "b"\nprofile = "wifi"\n'
    message = error_of(GOOD.replace("[[steps]]", link + "\n[[steps]]", 1))
    assert message == (
        "s.toml:10: links[0].from: a link needs node 'a' in a network namespace (netns)"
    )
    netns = GOOD.replace("[nodes.a]", '[nodes.a]\nnetns = "lan"').replace(
        "[nodes.b]", '[nodes.b]\nnetns = "lan"'
    )
    ok = load_text(netns.replace("[[steps]]", link + "\n[[steps]]", 1))
    assert ok.links[0].values() == {"loss": 0.05, "jitter_ms": 30.0}
    bad = netns.replace("[[steps]]", link.replace("wifi", "space") + "\n[[steps]]", 1)
    assert "links[0].profile: no profile 'space'" in error_of(bad)
    over = netns.replace("[[steps]]", link + "loss = 0.2\n\n[[steps]]", 1)
    assert load_text(over).links[0].values()["loss"] == 0.2
    assert "s.toml:15: links[0].loss: expected float <= 1.0" in error_of(over.replace("0.2", "2"))


def test_audio_steps_need_a_recording_made_before() -> None:
    text = GOOD + '\n[[steps]]\naudio = "heard"\ntone_hz = 440\nexpect = ["snr_db > 30"]\n'
    assert error_of(text) == "s.toml:24: steps[3].audio: no earlier record step made 'heard'"
    recorded = GOOD + '\n[[steps]]\nnode = "b"\nrecord = "vad:${speaker}"\nas = "heard"\n'
    assert load_text(recorded + text[len(GOOD) :]).steps[-1].kind == "audio"
    no_expect = recorded + '\n[[steps]]\naudio = "heard"\ntone_hz = 440\n'
    assert "an audio step says what must hold" in error_of(no_expect)


def test_signals_are_checked() -> None:
    assert "nodes.a.files.x.wav: 'chirp:0': seconds must be in" in error_of(
        GOOD.replace("chirp:1", "chirp:0")
    )
    assert "expected sine:HZ:SECONDS" in error_of(GOOD.replace("chirp:1", "sine:2"))


def test_the_line_index_follows_arrays_of_tables_and_inline_tables() -> None:
    index = LineIndex(GOOD)
    assert index.line_of(("nodes", "a")) == 3
    assert index.line_of(("nodes", "a", "files", "x.wav")) == 4
    assert index.line_of(("steps", 1, "body", "kind")) == 15
    assert index.line_of(("steps", 2, "expect", 1)) == 21
    assert index.line_of(("nowhere",)) is None


def test_expressions() -> None:
    context = {"status": 201, "body": {"state": "active", "ends": [{"role": "receiver"}]}}
    assert evaluate("status == 201 and body.state in ['active', 'starting']", context)
    assert evaluate("len(body.ends) == 1 and body.ends[0].role == 'receiver'", context)
    assert evaluate("190 < status + 1 <= 202", context)
    assert evaluate("port('rtp+rs8m://0.0.0.0:4100') == 4100", context)
    assert not evaluate("status != 201 or null", context)
    with pytest.raises(ExpressionError, match=r"body.nope: no such field \(there is ends, state\)"):
        evaluate("body.nope == 1", context)
    with pytest.raises(ExpressionError, match="no item 3 in a list of 1"):
        evaluate("body.ends[3]", context)
    with pytest.raises(ExpressionError, match="no field starts with '_'"):
        evaluate("body.__class__", context)


def test_references() -> None:
    values = {"uid": "ab12", "n": 3}
    assert substitute("/streams/${uid}", values) == "/streams/ab12"
    assert substitute("body.uid == ${uid}", values, literal=True) == "body.uid == 'ab12'"
    assert substitute_value({"a": ["${n}", "x${n}"]}, values) == {"a": [3, "x3"]}
    with pytest.raises(Undefined):
        substitute("${nope}", values)


def test_the_readme_shows_the_library_file_as_it_is() -> None:
    readme = Path("README.md").read_text()
    start = readme.index("```toml\n", readme.index("## Scenarios")) + len("```toml\n")
    shown = readme[start : readme.index("```", start)]
    assert shown == Path("scenarios/tone_to_speaker.toml").read_text()

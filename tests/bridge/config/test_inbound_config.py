"""[[inbound]] tables and the opt-out words: parsed once, one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import Config, ConfigError, load_config
from bridge.config.inbound import InboundRoute
from bridge.inbound.routing import InboundRouter

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "bridge.toml"


def test_the_example_file_routes_by_number_and_keyword():
    config = load_config(env={}, path=str(EXAMPLE))
    assert InboundRoute("22141", "JOIN", "acme-promotions") in config.inbound
    router = InboundRouter.from_config(config)
    assert router.route("22141", "join the club").account == "acme-promotions"
    assert router.route("+22141", "hello").account == "acme"
    assert router.route("254709123456", "Stop").action == "optout"
    assert router.route("99999", "STOP").account is None  # unrouted: no opt-out either
    assert router.route("99999", "STOP").action is None


@pytest.mark.parametrize(
    "table,error",
    [
        ({"number": "22 141", "account": "a"}, r"#1: number must be a short code or number"),
        ({"number": "22141"}, r"\[\[inbound\]\] #1: account is required"),
        ({"number": "22141", "account": "a", "keyword": "two words"}, r"keyword must be one word"),
        ({"number": "22141", "account": "a", "kw": "x"}, r"unknown key 'kw'; known keys"),
    ],
)
def test_bad_tables_are_one_line_naming_the_key(table, error):
    with pytest.raises(ConfigError, match=error):
        Config().replace(inbound=(table,))


def test_duplicates_and_clashing_words_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"#2: number '\+22141' without a keyword is already"):
        Config().replace(
            inbound=({"number": "22141", "account": "a"}, {"number": "+22141", "account": "b"})
        )
    with pytest.raises(ConfigError, match="both hold 'START'"):
        load_config(env={"BRIDGE_OPTOUT_KEYWORDS": "stop,start"})
    path = tmp_path / "bridge.toml"
    path.write_text('[[inbound]]\nnumber = "1"\naccount = "a"\n')
    with pytest.raises(ConfigError, match=rf"^{path}: \[\[inbound\]\] #1: number must be"):
        load_config(env={}, path=str(path))
    assert load_config(env={"BRIDGE_OPTIN_KEYWORDS": "yes, Go"}).optin_keywords == ("YES", "GO")


def test_opt_words_name_a_keyword_account_on_a_shared_short_code():
    """STOP/START before or after a keyword of the number act on the keyword's account; a plain
    STOP acts on the account the number routes to; punctuation around words is ignored."""
    router = InboundRouter(
        (
            InboundRoute("22141", None, "plain"),
            InboundRoute("22141", "ACME", "acme"),
            InboundRoute("30000", "ACME", "elsewhere"),
        ),
        optout=("STOP", "UNSUBSCRIBE"),
        optin=("START",),
    )
    route = lambda text, dest="22141": router.route(dest, text)  # noqa: E731
    for text in ("STOP ACME", "stop acme", " Stop, Acme! ", "ACME STOP", "acme: unsubscribe."):
        assert (route(text).account, route(text).action) == ("acme", "optout"), text
    for text in ("START ACME", "Acme start!"):
        assert (route(text).account, route(text).action) == ("acme", "optin"), text
    assert (route("STOP").account, route("STOP").action) == ("plain", "optout")
    assert (route("Stop.").account, route("Stop.").action) == ("plain", "optout")
    assert (route("STOP BETA").account, route("STOP BETA").action) == ("plain", "optout")
    assert (route("ACME hello").account, route("ACME hello").action) == ("acme", None)
    assert (route("hello ACME").account, route("hello ACME").action) == ("plain", None)
    assert (route("STOP ACME", "99999").account, route("STOP ACME", "99999").action) == (
        None,
        None,
    )
    assert route("STOP ACME").keyword == "STOP" and route("...").keyword is None


@pytest.mark.parametrize(
    "settings,error",
    [
        ({"inbound": ({"number": "22141", "account": "a", "keyword": "#ACME"},)}, r"keyword must"),
        ({"optout_keywords": ("STOP!",)}, r"optout_keywords .*without punctuation"),
    ],
)
def test_words_with_punctuation_at_an_end_are_refused(settings, error):
    """An MO's words are compared without surrounding punctuation: such a word never matches."""
    with pytest.raises(ConfigError, match=error):
        Config().replace(**settings)

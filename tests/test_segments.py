"""The segment function: how a text is split into the parts that are sent, counted and charged."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.errors import ServiceError
from app.services.segments import (
    GSM_BASIC,
    GSM_EXTENSION,
    MAX_CHARACTERS,
    check_text,
    plain_quotes,
    split_text,
)

GSM = GSM_BASIC | GSM_EXTENSION
SMILE = "\U0001f600"  # 😀, outside the Basic Multilingual Plane: a surrogate pair in UCS-2
THUMBS_UP_MEDIUM = "\U0001f44d\U0001f3fd"  # 👍🏽, thumbs up + skin tone: 4 UCS-2 units
FLAG_US = "\U0001f1fa\U0001f1f8"  # 🇺🇸, two regional indicators: 4 UCS-2 units
TECHNOLOGIST = "\U0001f469\u200d\U0001f4bb"  # 👩‍💻, woman + ZWJ + laptop: 5 UCS-2 units
E_ACUTE_DECOMPOSED = "e\u0301"  # e + combining acute: looks like é, needs Unicode


def septets(part: str) -> int:
    """GSM-7 septets as sent: an extension character goes out as escape + code."""
    return sum(2 if ch in GSM_EXTENSION else 1 for ch in part)


def utf16_units(part: str) -> int:
    return len(part.encode("utf-16-le", "surrogatepass")) // 2


def units(part: str, encoding: str) -> int:
    return septets(part) if encoding == "GSM-7" else utf16_units(part)


# ---------------------------------------------------------------------------------------------
# The table of cases


@pytest.mark.parametrize(
    ("text", "encoding", "part_lengths", "units_used"),
    [
        pytest.param("a" * 160, "GSM-7", [160], 160, id="160 GSM characters are 1 text"),
        pytest.param("a" * 161, "GSM-7", [160, 1], 1, id="161 GSM characters are 2 texts"),
        pytest.param("a" * 320, "GSM-7", [160, 160], 160, id="320 GSM characters are 2 texts"),
        pytest.param("a" * 321, "GSM-7", [160, 160, 1], 1, id="321 GSM characters are 3 texts"),
        pytest.param("a" * 69 + "’", "UCS-2", [70], 70, id="70 Unicode characters are 1 text"),
        pytest.param("a" * 70 + "’", "UCS-2", [70, 1], 1, id="71 Unicode characters are 2 texts"),
        pytest.param("€" * 80, "GSM-7", [80], 160, id="80 euro signs are 160 septets, 1 text"),
        pytest.param("€" * 81, "GSM-7", [80, 1], 2, id="81 euro signs are 2 texts"),
        pytest.param(
            "a" * 159 + "{", "GSM-7", [159, 1], 2, id="a brace straddling 160 moves to part 2"
        ),
        pytest.param("a" * 158 + "{", "GSM-7", [159], 160, id="a brace ending at 160 fits"),
        pytest.param(
            "a" * 69 + SMILE, "UCS-2", [69, 1], 2, id="an emoji straddling 70 moves to part 2"
        ),
        pytest.param("a" * 68 + SMILE, "UCS-2", [69], 70, id="an emoji ending at 70 fits"),
    ],
)
def test_table_of_lengths(text: str, encoding: str, part_lengths: list[int], units_used: int):
    result = split_text(text)
    assert result.encoding == encoding
    assert [len(part) for part in result.parts] == part_lengths
    assert result.count == len(part_lengths)
    assert result.units_used == units_used
    assert result.part_capacity == (160 if encoding == "GSM-7" else 70)
    assert "".join(result.parts) == text


def test_an_emoji_at_the_70_boundary_is_never_split():
    result = split_text("a" * 69 + SMILE)
    assert result.parts == ("a" * 69, SMILE)


def test_an_extension_character_at_the_160_boundary_is_never_split():
    result = split_text("a" * 159 + "{b")
    assert result.parts == ("a" * 159, "{b")


def test_a_smart_quote_makes_the_whole_message_unicode():
    result = split_text("It’s ready")
    assert result.encoding == "UCS-2"
    assert result.part_capacity == 70
    assert result.unicode_because == ("’",)


def test_the_same_text_with_a_plain_quote_stays_gsm():
    result = split_text("It's ready")
    assert result.encoding == "GSM-7"
    assert result.unicode_because == ()


def test_two_hundred_characters_with_one_emoji_are_three_texts():
    # The browser test: 200 code points including 1 emoji -> UCS-2 -> 70-unit parts.
    text = ("Hello from the shop " * 10)[:199] + SMILE
    assert len(text) == 200
    result = split_text(text)
    assert result.encoding == "UCS-2"
    assert result.count == 3
    assert "3 texts" in result.summary


# ---------------------------------------------------------------------------------------------
# Word boundaries


def test_a_part_ends_after_the_last_space_when_that_adds_no_part():
    text = "a" * 150 + " " + "b" * 20
    result = split_text(text)
    assert result.parts == ("a" * 150 + " ", "b" * 20)


def test_a_part_ends_after_the_last_newline_when_that_adds_no_part():
    text = "a" * 150 + "\n" + "b" * 20
    assert split_text(text).parts == ("a" * 150 + "\n", "b" * 20)


def test_a_word_is_split_when_moving_it_whole_would_add_a_part():
    text = "a" * 155 + " " + "b" * 164  # 320 characters: 2 texts greedily, 3 at the space
    result = split_text(text)
    assert result.parts == ("a" * 155 + " " + "b" * 4, "b" * 160)


def test_word_boundaries_apply_to_every_part():
    words = " ".join(["sunshine"] * 60)  # 539 characters
    result = split_text(words)
    assert result.count == math.ceil(len(words) / 160)
    assert all(part.endswith(" ") for part in result.parts[:-1])
    assert all(part.startswith("sunshine") for part in result.parts)


def test_a_no_break_space_is_not_a_word_boundary():
    text = "a" * 60 + "\u00a0" + "b" * 20
    assert split_text(text).parts == ("a" * 60 + "\u00a0" + "b" * 9, "b" * 11)


# ---------------------------------------------------------------------------------------------
# Grapheme clusters


@pytest.mark.parametrize(
    "cluster",
    [
        pytest.param(THUMBS_UP_MEDIUM, id="emoji with skin tone"),
        pytest.param(FLAG_US, id="flag"),
        pytest.param(TECHNOLOGIST, id="ZWJ sequence"),
        pytest.param(E_ACUTE_DECOMPOSED, id="letter with combining mark"),
        pytest.param("1\ufe0f\u20e3", id="keycap"),
    ],
)
def test_a_grapheme_cluster_at_the_boundary_moves_whole_to_the_next_part(cluster: str):
    fill = "a" * (70 - utf16_units(cluster) + 1)  # the cluster's last unit would be the 71st
    result = split_text(fill + cluster)
    assert result.parts == (fill, cluster)


def test_crlf_is_never_split():
    assert split_text("a" * 159 + "\r\n").parts == ("a" * 159, "\r\n")


def test_consecutive_flags_pair_up():
    flags = FLAG_US + "\U0001f1ec\U0001f1e7"  # 🇺🇸🇬🇧
    text = "a" * 66 + flags  # the second flag straddles 70
    assert split_text(text).parts == ("a" * 66 + FLAG_US, "\U0001f1ec\U0001f1e7")


def test_a_cluster_longer_than_a_part_is_split_between_code_points():
    text = "a" + "\u0301" * 100
    result = split_text(text)
    assert [len(part) for part in result.parts] == [70, 31]
    assert "".join(result.parts) == text


def test_a_space_after_a_zero_width_joiner_is_still_a_word_boundary():
    text = "a" * 60 + "\u200d " + "b" * 20
    assert split_text(text).parts == ("a" * 60 + "\u200d ", "b" * 20)


def test_surrogate_code_points_in_a_str_are_never_split():
    # A str built from broken UTF-16 holds the pair as two code points; they stay together.
    pair = "\ud83d\ude00"
    result = split_text("a" * 69 + pair)
    assert result.parts == ("a" * 69, pair)


# ---------------------------------------------------------------------------------------------
# The 550-character limit and refusals


def test_550_characters_are_accepted():
    result = check_text("a" * MAX_CHARACTERS)
    assert result.count == 4
    assert result.characters == 550


def test_551_characters_are_refused_with_the_count():
    with pytest.raises(ServiceError) as refused:
        check_text("a" * 551)
    assert refused.value.message == "Texts can be at most 550 characters; this one has 551."


def test_the_limit_counts_an_emoji_as_one_character():
    result = check_text(SMILE * 550)  # 1,100 UTF-16 units but 550 code points
    assert result.characters == 550
    assert result.count == 1100 // 70 + 1


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t \r\n"])
def test_empty_or_whitespace_only_messages_are_refused(text: str):
    with pytest.raises(ServiceError, match="Write a message"):
        check_text(text)


def test_split_text_reports_too_long_without_refusing():
    assert split_text("a" * 551).too_long
    assert not split_text("a" * 550).too_long


def test_an_empty_text_has_no_parts():
    result = split_text("")
    assert result.parts == ()
    assert result.count == 0
    assert result.summary == "0/160 · 0 texts"


# ---------------------------------------------------------------------------------------------
# The composer's summary line


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        ("a" * 142, "142/160 · 1 text"),
        ("a" * 320, "2 texts · 320 characters"),
        ("{" * 10, "20/160 · 1 text"),
        ("a" * 44 + "’", "45/70 · 1 text · Unicode because of ’"),
        ("a" * 70 + "’", "2 texts · 71 characters · Unicode because of ’"),
        ("a" * 199 + SMILE, "3 texts · 200 characters · Unicode because of 😀"),
        ("“Hi” – see you…", "15/70 · 1 text · Unicode because of “, ”, – and …"),
        ("a\u00a0b", "3/70 · 1 text · Unicode because of no-break space"),
        ("a\tb", "3/70 · 1 text · Unicode because of tab"),
        ("Caf" + E_ACUTE_DECOMPOSED, "5/70 · 1 text · Unicode because of " + E_ACUTE_DECOMPOSED),
    ],
)
def test_summary_line(text: str, summary: str):
    assert split_text(text).summary == summary


def test_unicode_because_lists_at_most_five_distinct_characters_in_order():
    result = split_text("’a’“”–—…😀")
    assert result.unicode_because == ("’", "“", "”", "–", "—")


def test_unicode_because_keeps_an_emoji_with_its_skin_tone():
    assert split_text("ok " + THUMBS_UP_MEDIUM).unicode_because == (THUMBS_UP_MEDIUM,)


# ---------------------------------------------------------------------------------------------
# The GSM 03.38 alphabet


def test_the_basic_table_has_its_127_characters_and_the_extension_its_10():
    assert len(GSM_BASIC) == 127  # 128 positions less the escape
    assert set("\f^{}\\[~]|€") == GSM_EXTENSION
    assert not GSM_BASIC & GSM_EXTENSION


@pytest.mark.parametrize(
    "char", list("@£$¥èéùìòÇØøÅåÆæßÉÄÖÑÜ§¿äöñüà¡¤_ΔΦΓΛΩΠΨΣΘΞ\r\n ") + ["'", '"']
)
def test_gsm_characters_stay_gsm(char: str):
    assert split_text(char).encoding == "GSM-7"


@pytest.mark.parametrize("char", list("’‘“”–—…çáíóúâêÈÀ`\t\u00a0\u200b") + [SMILE])
def test_characters_outside_gsm_make_the_text_unicode(char: str):
    assert split_text("a" + char).encoding == "UCS-2"


# ---------------------------------------------------------------------------------------------
# The one-click swap of smart punctuation


def test_plain_quotes_swaps_smart_punctuation_for_gsm():
    text = "It’s “fine” – really — ‘ok’… see\u00a0you"
    swapped = plain_quotes(text)
    assert swapped == "It's \"fine\" - really - 'ok'... see you"
    assert split_text(swapped).encoding == "GSM-7"


def test_plain_quotes_leaves_emoji_and_plain_text_alone():
    assert plain_quotes("Thanks " + SMILE + " é") == "Thanks " + SMILE + " é"


# ---------------------------------------------------------------------------------------------
# Properties

CLUSTERS = [
    SMILE,
    THUMBS_UP_MEDIUM,
    FLAG_US,
    TECHNOLOGIST,
    E_ACUTE_DECOMPOSED,
    "1\ufe0f\u20e3",
    "\r\n",
    "’",
    "\u00a0",
]
gsm_text = st.text(alphabet=st.sampled_from(sorted(GSM)), max_size=600)
mixed_text = st.lists(
    st.one_of(
        st.sampled_from(sorted(GSM)),
        st.sampled_from(["\u0301", "\u200d", "\ufe0f", "\U0001f3fd", "\U0001f1fa", "\t"]),
        st.sampled_from(CLUSTERS),
        st.characters(),
    ),
    max_size=400,
).map("".join)
any_text = st.one_of(gsm_text, mixed_text)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_parts_rejoin_to_the_original(text: str):
    assert "".join(split_text(text).parts) == text


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_no_part_is_empty_or_over_its_capacity(text: str):
    result = split_text(text)
    assert all(result.parts)
    assert all(units(part, result.encoding) <= result.part_capacity for part in result.parts)
    if result.parts:
        assert result.units_used == units(result.parts[-1], result.encoding)


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_count_is_the_number_of_parts_and_no_fewer_than_the_units_need(text: str):
    result = split_text(text)
    total = sum(units(part, result.encoding) for part in result.parts)
    assert result.count == len(result.parts)
    assert result.count >= math.ceil(total / result.part_capacity)
    assert (result.count == 0) == (text == "")


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_gsm_7_only_when_every_character_is_gsm(text: str):
    result = split_text(text)
    assert (result.encoding == "GSM-7") == all(ch in GSM for ch in text)
    assert (result.unicode_because == ()) == (result.encoding == "GSM-7")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(CLUSTERS + list("ab{€")), min_size=20, max_size=250))
def test_no_part_ends_inside_a_grapheme_cluster(clusters: list[str]):
    # No spaces: a word-boundary split would hide where the greedy split falls.
    text = "".join(clusters)
    boundaries = {0}
    offset = 0
    for cluster in clusters:
        offset += len(cluster)
        boundaries.add(offset)
    offset = 0
    for part in split_text(text).parts:
        offset += len(part)
        assert offset in boundaries


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(st.characters(min_codepoint=0x10000), st.characters(codec="ascii")),
        min_size=30,  # long enough to need a second part
        max_size=300,
    )
)
def test_no_part_ends_inside_a_surrogate_pair_of_code_units(text: str):
    # Hold the text as UTF-16 code units, one code point each, as broken UTF-16 input would.
    code_units = text.encode("utf-16-le")
    as_units = "".join(
        chr(int.from_bytes(code_units[i : i + 2], "little")) for i in range(0, len(code_units), 2)
    )
    for part in split_text(as_units).parts:
        part.encode("utf-16-le", "surrogatepass").decode("utf-16-le")  # raises on a half pair


words = st.lists(
    st.text(alphabet=st.sampled_from(list("abcxyz€{") + [SMILE, "’"]), min_size=1, max_size=20),
    min_size=1,
    max_size=35,
)


@settings(max_examples=300, deadline=None)
@given(words)
def test_splitting_at_words_never_adds_a_part(word_list: list[str]):
    text = " ".join(word_list)
    without_spaces = text.replace(" ", "_")  # the same costs, and nowhere to split but greedily
    assert split_text(text).count == split_text(without_spaces).count

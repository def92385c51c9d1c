import pytest

from services.cache.contrasts import ANTONYMS, affix_base, lemma
from services.cache.guard import facts, mismatch


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("How do I reset my card PIN?", "how can I change the PIN of my card"),
        ("What is the capital of France?", "what's the capital city of France"),
        ("Where is order 48213?", "Has order 48213 shipped yet?"),
        ("I do not recognise this payment", "I don't recognise this payment on my account"),
        ("Can I top up by card today?", "is topping up by card possible today"),
        ("Has my parcel left the depot?", "Has parcel 48213 left the depot?"),  # an omitted value is for the verifier
        ("My voicemail PIN, how do I change it?", "How do I change my voicemail PIN?"),  # clauses reordered
        ("Send my dad money from my account", "From my account, send money to my dad"),
        ("I can't log in to the app", "How do I log in to the app?"),  # a problem and its fix
        ("Is Lisbon expensive to visit?", "is lisbon expensive to visit"),
    ],
)
def test_paraphrases_pass(query: str, cached: str) -> None:
    assert mismatch(query, cached) == ""


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        # Title Case: the capitals of a headline are not names.
        ("Local Bakery Wins National Bread Award", "local bakery wins a national award for its bread"),
        ("Heavy Snow Closes Schools Across Region", "heavy snow has closed schools across the region"),
        # A possessive names the same thing.
        ("What is Canada's national animal?", "What is the national animal of Canada?"),
        ("How long is Norway's coastline?", "How long is the coastline of Norway?"),
        # A hyphenated number-word gives its number, not a date.
        ("Can a 16-year-old open a savings account?", "Can someone aged 16 open a savings account?"),
        ("Is the 5-day pass worth it?", "Is the pass for 5 days worth it?"),
        # Ordinals are numbers, in digits or words.
        ("Who finished 3rd in the marathon?", "Who came third in the marathon?"),
        ("Which room is on the 4th floor?", "Which room is on the fourth floor?"),
        # "no X" and "without X" say what "X-less" says.
        ("Can I enter the temple with no shoes?", "Can I enter the temple shoeless?"),
        ("Is it rude to eat soup without a spoon?", "Is it rude to eat soup spoonless?"),
        # Spelling and case do not make a different name.
        ("Where was Tchaikovsky born?", "Where was Tchaikovski born?"),
        ("Is the UK in the EU?", "Is the U.K. in the E.U.?"),
    ],
)
def test_answer_keeping_variations_pass(query: str, cached: str) -> None:
    assert mismatch(query, cached) == ""


@pytest.mark.parametrize(
    ("query", "cached", "reason"),
    [
        ("Please cancel my order", "Please don't cancel my order", "negation"),
        ("I want to reset my card PIN", "I do not want to reset my card PIN", "negation"),
        ("Where is order 48213?", "Where is order 48231?", "numbers"),
        ("Transfer 100 euros to savings", "Transfer 1000 euros to savings", "numbers"),
        ("Take 2 tablets every 6 hours", "Take 2 tablets every 2 hours", "numbers"),
        ("Status of ticket AB12CD", "Status of ticket AB13CD", "identifiers"),
        ("Book a table for Friday", "Book a table for Saturday", "dates"),
        ("Wake me at 6am", "Wake me at 6pm", "dates"),
        ("What is the capital of France?", "What is the capital of Spain?", "entities"),
        ("Flights from Paris to Berlin", "Flights from Paris to Rome", "entities"),
        ("Does the banking app run on iPadOS?", "Does the banking app run on watchOS?", "entities"),
    ],
)
def test_answer_changing_differences_are_caught(query: str, cached: str, reason: str) -> None:
    assert reason in mismatch(query, cached)


@pytest.mark.parametrize(
    ("query", "cached", "reason"),
    [
        # Negation by affix: un-, non-, in-, dis-, and X-less against X.
        ("Is the lift usable during a fire alarm?", "Is the lift unusable during a fire alarm?", "affix"),
        ("Are these shoes returnable?", "Are these shoes non-returnable?", "affix"),
        ("Is this mushroom edible?", "Is this mushroom inedible?", "affix"),
        ("Is the speaker wireless?", "Does the speaker need a wire?", "affix"),
        ("Do guests like the new menu?", "Do guests dislike the new menu?", "affix"),
        # Negation by antonym.
        ("Is the car park full on Sundays?", "Is the car park empty on Sundays?", "antonyms"),
        ("Is the ticket office open after 6pm?", "Is the ticket office closed after 6pm?", "antonyms"),
        ("How do I turn on read receipts?", "How do I turn off read receipts?", "antonyms"),
        ("How do I opt in to marketing emails?", "How do I opt out of marketing emails?", "antonyms"),
        # A verb of avoidance negates its object.
        ("Should I take antihistamines when flying?", "Should I avoid antihistamines when flying?", "negation"),
    ],
)
def test_affix_and_antonym_negation_is_caught(query: str, cached: str, reason: str) -> None:
    assert reason in mismatch(query, cached)


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("Move £200 from my ISA to my current account", "Move £200 from my current account to my ISA"),
        ("Translate this letter from French to German", "Translate this letter from German to French"),
        ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
        ("Can I switch my plan from monthly to annual?", "Can I switch my plan to monthly from annual?"),
        ("Is Lyon bigger than Marseille?", "Is Marseille bigger than Lyon?"),
        ("The blue car overtakes the red van", "The red van overtakes the blue car"),
        ("What is P(X|Y) here?", "What is P(Y|X) here?"),
    ],
)
def test_swapped_direction_or_roles_are_caught(query: str, cached: str) -> None:
    assert "order differs" in mismatch(query, cached)


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("The red van was overtaken by the blue car", "The blue car overtakes the red van"),  # passive
        ("Is Lyon bigger than Marseille?", "Is Marseille smaller than Lyon?"),  # converse
        ("Compare Lyon to Marseille", "Compare Marseille to Lyon"),  # symmetric
    ],
)
def test_role_preserving_swaps_pass(query: str, cached: str) -> None:
    assert mismatch(query, cached) == ""


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("Is delivery free on orders under £30?", "Is delivery free on orders over £30?"),
        ("Can I return a sofa within 28 days?", "Can I return a sofa after 28 days?"),
        ("How much is a museum ticket for adults?", "How much is a museum ticket for children?"),
        ("Where are the men's changing rooms?", "Where are the women's changing rooms?"),
        ("Is the gym busy on weekdays?", "Is the gym busy at weekends?"),
        ("Does the card charge more abroad?", "Does the card charge less abroad?"),
    ],
)
def test_comparators_scope_and_time_words_are_caught(query: str, cached: str) -> None:
    assert "antonyms" in mismatch(query, cached)


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("Is the pool not open yet?", "Is the pool closed?"),  # a negated antonym agrees
        ("Is the cable unsafe?", "Is the cable not safe?"),  # a negated base agrees
        ("Is the smaller box cheaper?", "Is the smaller box less expensive?"),
    ],
)
def test_negated_contrasts_agree(query: str, cached: str) -> None:
    assert mismatch(query, cached) == ""


def test_double_negation_cancels() -> None:
    assert not facts("It is not true that I did not pay").negated
    assert facts("I did not pay").negated


def test_sentence_initial_capitals_are_not_entities() -> None:
    assert facts("Where is my card? Please help.").entities == frozenset()


def test_the_wordnet_lexicon_ships_with_the_package() -> None:
    assert "closed" in ANTONYMS["open"]
    assert "weekend" in ANTONYMS[lemma("weekdays")]
    assert lemma("bigger") == "big"


@pytest.mark.parametrize(
    ("word", "base"),
    [("unsafe", "safe"), ("non-refundable", "refundable"), ("shirtless", "shirt"), ("sugar-free", "sugar")],
)
def test_affix_bases(word: str, base: str) -> None:
    assert affix_base(word) == base


@pytest.mark.parametrize("word", ["under", "unless", "inform", "import", "display", "income", "regardless"])
def test_words_that_only_look_negated(word: str) -> None:
    assert affix_base(word) == ""

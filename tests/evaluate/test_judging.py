"""Judge building blocks: prompts of the two protocols, score parsing, the retry policy, position bias."""

from __future__ import annotations

import pytest

from ldrt_hpc.config import ConfigError
from ldrt_hpc.evaluate.judging import (
    DEFAULT_JUDGE_PROMPTS,
    JudgeItem,
    JudgeResult,
    ReviewScore,
    ScoreParseError,
    combine_review,
    flip_rate,
    judge_once,
    load_judge_prompts,
    parse_pair,
    parse_single,
    review_messages,
    single_messages,
)

PROMPTS = load_judge_prompts(DEFAULT_JUDGE_PROMPTS)
ITEM = JudgeItem(sample_id="p1-f2-r", task="reasoning", caption="Figure 2. Survival after 0.5 Gy.",
                 context="As shown in Fig. 2, survival rose.\nThe effect lasted to day 14.",
                 question="What does Figure 2 show?", reference="REFERENCE ANSWER", answer="MODEL ANSWER")
LLAVA_RULE = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above. The user asks the question on observing an image. For your reference, the visual "
    "content in the image is represented with the caption and the sentences of the paper that mention the figure.\n"
    "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant receives "
    "an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.\n"
    "Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, "
    "respectively. The two scores are separated by a space.\n"
    "In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential "
    "bias and ensuring that the order in which the responses were presented does not affect your judgment.")


def _review_text(first: str, second: str) -> str:
    return ("[Context]\nFigure 2. Survival after 0.5 Gy.\n\nAs shown in Fig. 2, survival rose.\nThe effect lasted to "
            f"day 14.\n\n[Question]\nWhat does Figure 2 show?\n\n[Assistant 1]\n{first}\n\n[End of Assistant 1]\n\n"
            f"[Assistant 2]\n{second}\n\n[End of Assistant 2]\n\n[System]\n{LLAVA_RULE}")


def test_review_prompt_puts_everything_in_its_slot_and_swaps_the_answers():
    forward = review_messages(PROMPTS, ITEM, swapped=False)
    assert forward == [
        {"role": "system", "content": "You are a helpful and precise assistant for checking the quality of the answer."},
        {"role": "user", "content": _review_text("REFERENCE ANSWER", "MODEL ANSWER")}]
    swapped = review_messages(PROMPTS, ITEM, swapped=True)
    assert swapped[0] == forward[0]
    assert swapped[1]["content"] == _review_text("MODEL ANSWER", "REFERENCE ANSWER")  # the model is Assistant 1


def test_single_prompt_and_an_empty_context():
    (system, user) = single_messages(PROMPTS, ITEM)
    assert system["role"] == "system" and "precise assistant" in system["content"]
    assert user["content"].startswith("[Context]\nFigure 2. Survival after 0.5 Gy.\n\nAs shown in Fig. 2, survival "
                                      "rose.\nThe effect lasted to day 14.\n\n[Question]\nWhat does Figure 2 show?\n\n"
                                      "[Reference Answer]\nREFERENCE ANSWER\n\n[End of Reference Answer]\n\n"
                                      "[Assistant's Answer]\nMODEL ANSWER\n\n[End of Assistant's Answer]\n\n[System]\n")
    assert user["content"].endswith(PROMPTS.single.rule) and '"Score: N"' in PROMPTS.single.rule
    bare = JudgeItem(**{**ITEM.__dict__, "context": "  "})
    assert "[Context]\nFigure 2. Survival after 0.5 Gy.\n\n(no further text)\n\n[Question]" in \
        single_messages(PROMPTS, bare)[1]["content"]


def test_judge_prompts_are_versioned_and_checked(tmp_path):
    assert PROMPTS.version == "judge-v1"
    assert DEFAULT_JUDGE_PROMPTS.read_text().startswith("# ldrt-hpc run judge --config ")
    bad = tmp_path / "judge.yaml"
    bad.write_text(DEFAULT_JUDGE_PROMPTS.read_text().replace("{answer_2}", "{answer2}"))
    with pytest.raises(ConfigError, match=r"judge.yaml: review: .*unknown \['answer2'\] and missing \['answer_2'\]"):
        load_judge_prompts(bad)


@pytest.mark.parametrize("reply, question, expected", [
    ("8 6\nAssistant 1 is more precise.", "", (8.0, 6.0)),
    ("7.5 9\n", "", (7.5, 9.0)),
    ("**8** **6**\n\nBoth are fine.", "", (8.0, 6.0)),
    ("8, 6\nThe first cites 3 studies.", "", (8.0, 6.0)),
    ("[[8]] [[6]]", "", (8.0, 6.0)),
    ("Scores:\n\n9 4\nThe second answer misses the dose.", "", (9.0, 4.0)),
    ("Assistant 1: 7\nAssistant 2: 9\nAssistant 2 gives 3 more details.", "", (7.0, 9.0)),
    ("**Assistant 1:** 8/10\n**Assistant 2:** 5/10", "", (8.0, 5.0)),
    ("Figure 2 shows survival; my scores: 7 8\nBoth describe it.", "What does Figure 2 show?", (7.0, 8.0)),
    ("At 0.5 Gy both answers agree: 6 9\n", "What happens after 0.5 Gy?", (6.0, 9.0)),
    ("By day 14 (as asked) 8 7", "What changes by day 14?", (8.0, 7.0)),
    ("Both rated on a scale of 1 to 10: 10 0", "", (10.0, 0.0)),
])
def test_parse_pair(reply, question, expected):
    assert parse_pair(reply, question) == expected


@pytest.mark.parametrize("reply, question, reason", [
    ("12 7\nToo generous.", "", r"Assistant 1's score 12 is outside 0-10"),
    ("7 -1\n", "", r"Assistant 2's score -1 is outside 0-10"),
    ("Both answers are good.\nThe first is better.", "", "no scores on the first line"),
    ("", "", "empty reply"),
    ("8\nThe second is missing.", "", r"one score on the first line \(8\), two expected"),
    ("Figure 2 at 0.5 Gy: 7\n", "What does Figure 2 show at 0.5 Gy?", r"one score on the first line \(7\)"),
])
def test_parse_pair_rejects(reply, question, reason):
    with pytest.raises(ScoreParseError, match=reason):
        parse_pair(reply, question)


def test_parse_pair_skips_a_question_number_only_when_it_cannot_be_a_score():
    question = "Why does the effect vanish after 24 weeks in group 7?"
    assert parse_pair("24 8 6", question) == (8.0, 6.0)  # 24 is the question's, and no score
    assert parse_pair("7 6", question) == (7.0, 6.0)  # 7 may be a score: the question does not forbid it
    with pytest.raises(ScoreParseError, match="24 is outside"):
        parse_pair("24 8 6", "")  # without the question 24 is a bad score


@pytest.mark.parametrize("reply, question, expected", [
    ("Score: 8\nAccurate and complete.", "", 8.0),
    ("**Score:** 7\n", "", 7.0),
    ("Rating: 7.5\nGood.", "", 7.5),
    ("[[8]]\nGood.", "", 8.0),
    ("The answer deserves [[6]].", "", 6.0),
    ("8/10\nClose to the reference.", "", 8.0),
    ("9\nThe answer matches.", "", 9.0),
    ("0\nWrong figure.", "", 0.0),
    ("The answer is accurate but short.\n\nOverall score: 6", "", 6.0),
    ("Score: 5\nA score of 9 would need the dose.", "", 5.0),
    ("On a scale of 0 to 10, the score is 4.", "", 4.0),
    ("Figure 2 is described well: 7\n", "What does Figure 2 show?", 7.0),
    ("At 0.5 Gy it is right: 8\n", "What happens after 0.5 Gy?", 8.0),
])
def test_parse_single(reply, question, expected):
    assert parse_single(reply, question) == expected


@pytest.mark.parametrize("reply, reason", [
    ("Score: 12\n", r"labelled score 12 is outside 0-10"),
    ("11\n", r"score 11 is outside"),
    ("The answer is fine.", "no 'Score: N' and no score on the first line"),
    ("It gets 7 or 8.", "2 numbers on the first line"),
    ("   \n", "empty reply"),
])
def test_parse_single_rejects(reply, reason):
    with pytest.raises(ScoreParseError, match=reason):
        parse_single(reply)


def _scripted(*replies):
    calls = []

    def generate(messages, attempt):
        calls.append(attempt)
        return replies[attempt]

    return generate, calls


def test_judge_once_retries_a_malformed_reply():
    generate, calls = _scripted("I think both are good.", "8 6\nFine.")
    result = judge_once(generate, [{"role": "user", "content": "x"}], parse_pair, retries=1)
    assert result == JudgeResult(value=(8.0, 6.0), raw=["I think both are good.", "8 6\nFine."], attempts=2, error=None)
    assert calls == [0, 1]  # the attempt number reaches the stage (it changes the seed)


def test_judge_once_records_a_missing_judgement_never_minus_one():
    generate, calls = _scripted("no idea", "still no idea")
    result = judge_once(generate, [], parse_single, retries=1)
    assert result.value is None and result.attempts == 2 and result.raw == ["no idea", "still no idea"]
    assert result.error == "2 replies unparsable; last: no 'Score: N' and no score on the first line: 'still no idea'"
    generate, calls = _scripted("Score: 3")
    assert judge_once(generate, [], parse_single, retries=0) == JudgeResult(value=3.0, raw=["Score: 3"], attempts=1)
    with pytest.raises(ValueError, match="retries must be >= 0"):
        judge_once(generate, [], parse_single, retries=-1)


def test_combine_review_maps_the_swapped_order_back_and_counts_flips():
    agree = combine_review((8, 6), (5, 7))  # swapped: model 5, reference 7
    assert agree == ReviewScore(reference_score=7.5, model_score=5.5, orders=2, flipped=False)
    biased = combine_review((8, 6), (8, 6))  # the judge prefers Assistant 1 whoever it is
    assert biased == ReviewScore(reference_score=7.0, model_score=7.0, orders=2, flipped=True)
    tie = combine_review((7, 7), (6, 8))  # tie, then reference better: a flip too
    assert tie == ReviewScore(reference_score=7.5, model_score=6.5, orders=2, flipped=True)
    assert combine_review(None, (9, 4)) == ReviewScore(reference_score=4.0, model_score=9.0, orders=1, flipped=None)
    assert combine_review((9, 4), None) == ReviewScore(reference_score=9.0, model_score=4.0, orders=1, flipped=None)
    assert combine_review(None, None) == ReviewScore(reference_score=None, model_score=None, orders=0, flipped=None)
    assert flip_rate([agree, biased, tie, combine_review((9, 4), None)]) == pytest.approx(2 / 3)
    assert flip_rate([combine_review((9, 4), None)]) is None and flip_rate([]) is None

"""Reply interpretation: a table of real-world replies, then properties that must hold for any text.

The two failures that hurt a person get the most cases: an opt-out read as something else (we keep
texting someone who said stop) and a red flag missed (a client with a serious symptom never reaches
the clinic).
"""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain.replies import (
    BETTER,
    BLADDER_BOWEL,
    CANNOT_WALK,
    FEVER,
    LEG_WEAKNESS,
    NUMBNESS,
    SAME,
    WORSE,
    Intent,
    Reply,
    interpret,
)

OUT, IN, HELP, CHECK = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP, Intent.CHECKIN
CONF, RESCH, RED, UNK = Intent.CONFIRM, Intent.RESCHEDULE, Intent.RED_FLAG, Intent.UNKNOWN
NUMB, WEAK, BLADDER, WALK = NUMBNESS, LEG_WEAKNESS, BLADDER_BOWEL, CANNOT_WALK

# (text, reminder_open, intent, answer, pain, red_flags)
CASES = [
    # --- Twilio keywords, any case, any punctuation
    ("STOP", False, OUT, None, None, ()),
    ("stop", True, OUT, None, None, ()),
    ("Stop.", False, OUT, None, None, ()),
    ("  STOP!!! ", False, OUT, None, None, ()),
    ("Stop please", False, OUT, None, None, ()),
    ("STOP NOW", False, OUT, None, None, ()),
    ("stopall", False, OUT, None, None, ()),
    ("Stop all", False, OUT, None, None, ()),
    ("Unsubscribe", False, OUT, None, None, ()),
    ("CANCEL", True, OUT, None, None, ()),
    ("end", False, OUT, None, None, ()),
    ("Quit", False, OUT, None, None, ()),
    ("revoke", False, OUT, None, None, ()),
    ("OPTOUT", False, OUT, None, None, ()),
    ("opt-out", False, OUT, None, None, ()),
    ("🛑 STOP 🛑", False, OUT, None, None, ()),
    ("ALTO", False, OUT, None, None, ()),
    ("¡Parar!", False, OUT, None, None, ()),
    ("baja", False, OUT, None, None, ()),
    ("Cancelar", False, OUT, None, None, ()),
    # --- plain-language opt-outs
    ("stop texting me", False, OUT, None, None, ()),
    ("Please don't text me anymore", False, OUT, None, None, ()),
    ("please don’t text me anymore", False, OUT, None, None, ()),
    ("Do not text me", False, OUT, None, None, ()),
    ("no more texts", False, OUT, None, None, ()),
    ("No more messages please", False, OUT, None, None, ()),
    ("Stop sending me messages", False, OUT, None, None, ()),
    ("unsubscribe me", False, OUT, None, None, ()),
    ("Remove me from your list", False, OUT, None, None, ()),
    ("take me off this list!!", False, OUT, None, None, ()),
    ("leave me alone", False, OUT, None, None, ()),
    ("I don't want these messages", False, OUT, None, None, ()),
    ("how do I stop these texts?", False, OUT, None, None, ()),
    ("STOP. Wrong number", False, OUT, None, None, ()),
    ("Thanks\nSTOP", False, OUT, None, None, ()),
    ("wrong number", False, OUT, None, None, ()),
    ("No me escriban más", False, OUT, None, None, ()),
    ("no quiero mensajes", False, OUT, None, None, ()),
    ("Dejen de enviarme mensajes por favor", False, OUT, None, None, ()),
    ("Para de escribirme", False, OUT, None, None, ()),
    ("Ya no quiero recibir estos mensajes", False, OUT, None, None, ()),
    ("quiero darme de baja", False, OUT, None, None, ()),
    ("Stop it", False, OUT, None, None, ()),
    ("Stop! it hurts", False, OUT, None, None, ()),
    ("You can stop sending reminders now, I'm fine", False, OUT, None, None, ()),
    # opt-out outranks everything, but a red flag in it is still reported
    ("stop texting me, I can't walk", False, OUT, None, None, (WALK,)),
    ("Worse. STOP.", False, OUT, WORSE, None, ()),
    # --- things that merely contain an opt-out word
    ("the pain won't stop", False, CHECK, WORSE, None, ()),
    ("can't stop hurting", False, CHECK, WORSE, None, ()),
    ("I had to stop at the end of my walk", False, UNK, None, None, ()),
    ("cancel my appointment", True, RESCH, None, None, ()),
    ("end of the week is better", True, RESCH, None, None, ()),
    ("Friday would be better for me", True, RESCH, None, None, ()),
    ("it hurt so I had to stop walking", False, UNK, None, None, ()),
    ("Stop it hurts", False, UNK, None, None, ()),
    ("No more pain!", False, CHECK, BETTER, None, ()),
    ("the pain stopped", False, UNK, None, None, ()),
    ("it's better at the weekend", False, CHECK, BETTER, None, ()),
    ("don't call me, text instead", False, UNK, None, None, ()),
    # --- opt in
    ("START", False, IN, None, None, ()),
    ("unstop", False, IN, None, None, ()),
    ("Yes", False, IN, None, None, ()),
    ("yes please", False, IN, None, None, ()),
    ("opt in", False, IN, None, None, ()),
    ("EMPEZAR", False, IN, None, None, ()),
    ("alta", False, IN, None, None, ()),
    # --- help
    ("HELP", False, HELP, None, None, ()),
    ("help?", False, HELP, None, None, ()),
    ("info", False, HELP, None, None, ()),
    ("Ayuda", False, HELP, None, None, ()),
    ("what is this?", False, UNK, None, None, ()),
    # --- confirm / reschedule
    ("C", True, CONF, None, None, ()),
    ("c.", True, CONF, None, None, ()),
    ("Confirm", True, CONF, None, None, ()),
    ("confirmed, thanks!", True, CONF, None, None, ()),
    ("I'll be there", True, CONF, None, None, ()),
    ("see you then 😊", True, CONF, BETTER, None, ()),
    ("See you at 3pm", True, CONF, None, None, ()),
    ("see you at 3 pm", True, CONF, None, None, ()),
    ("yes", True, CONF, None, None, ()),
    ("Yes!", True, CONF, None, None, ()),
    ("yep", True, CONF, None, None, ()),
    ("Sí", True, CONF, None, None, ()),
    ("si", True, CONF, None, None, ()),
    ("Confirmo", True, CONF, None, None, ()),
    ("👍", True, CONF, None, None, ()),
    ("R", True, RESCH, None, None, ()),
    ("reschedule please", True, RESCH, None, None, ()),
    ("Can we move it?", True, RESCH, None, None, ()),
    ("I need to change my appointment", True, RESCH, None, None, ()),
    ("sorry can't make it tomorrow", True, RESCH, None, None, ()),
    ("yes but can we move it to 4pm", True, RESCH, None, None, ()),
    ("Necesito cambiar la cita", True, RESCH, None, None, ()),
    ("reprogramar", True, RESCH, None, None, ()),
    ("cambiar la cita", True, RESCH, None, None, ()),
    ("could we move it?", True, RESCH, None, None, ()),
    ("can you cancel?", True, RESCH, None, None, ()),
    ("cancel please", True, OUT, None, None, ()),
    ("not going to make it", True, RESCH, None, None, ()),
    ("ok 👍", True, CONF, None, None, ()),
    ("sure", True, CONF, None, None, ()),
    ("sure", False, UNK, None, None, ()),
    # --- menu answers and words
    ("1", False, CHECK, BETTER, None, ()),
    ("2", False, CHECK, SAME, None, ()),
    ("3", False, CHECK, WORSE, None, ()),
    ("3.", False, CHECK, WORSE, None, ()),
    ("3 today", False, CHECK, WORSE, None, ()),
    ("2 thanks", False, CHECK, SAME, None, ()),
    ("three", False, CHECK, WORSE, None, ()),
    ("#1", False, CHECK, BETTER, None, ()),
    ("3 worse", False, CHECK, WORSE, None, ()),
    ("2 - same", False, CHECK, SAME, None, ()),
    ("better", False, CHECK, BETTER, None, ()),
    ("BETTER!", False, CHECK, BETTER, None, ()),
    ("beter", False, CHECK, BETTER, None, ()),
    ("bettr thanks", False, CHECK, BETTER, None, ()),
    ("Much better thank you!", False, CHECK, BETTER, None, ()),
    ("a lot better", False, CHECK, BETTER, None, ()),
    ("feeling good", False, CHECK, BETTER, None, ()),
    ("Great", False, CHECK, BETTER, None, ()),
    ("good", False, CHECK, BETTER, None, ()),
    ("improving", False, CHECK, BETTER, None, ()),
    ("better but still sore", False, CHECK, BETTER, None, ()),
    ("not too bad", False, CHECK, BETTER, None, ()),
    ("Good morning! Worse today", False, CHECK, WORSE, None, ()),
    ("same", False, CHECK, SAME, None, ()),
    ("sam", False, CHECK, SAME, None, ()),
    ("the same", False, CHECK, SAME, None, ()),
    ("About the same", False, CHECK, SAME, None, ()),
    ("no change", False, CHECK, SAME, None, ()),
    ("not much different", False, CHECK, SAME, None, ()),
    ("not better", False, CHECK, SAME, None, ()),
    ("No better", False, CHECK, SAME, None, ()),
    ("not worse", False, CHECK, SAME, None, ()),
    ("no better, no worse", False, CHECK, SAME, None, ()),
    ("worse", False, CHECK, WORSE, None, ()),
    ("WORSE", False, CHECK, WORSE, None, ()),
    ("wrose", False, CHECK, WORSE, None, ()),
    ("worst", False, CHECK, WORSE, None, ()),
    ("it hurts more", False, CHECK, WORSE, None, ()),
    ("more pain today", False, CHECK, WORSE, None, ()),
    ("awful", False, CHECK, WORSE, None, ()),
    ("Terrible!!", False, CHECK, WORSE, None, ()),
    ("not great", False, CHECK, WORSE, None, ()),
    ("better in the morning but worse at night", False, CHECK, WORSE, None, ()),
    ("👍", False, CHECK, BETTER, None, ()),
    ("🙂", False, CHECK, BETTER, None, ()),
    ("😀", False, CHECK, BETTER, None, ()),
    ("😐", False, CHECK, SAME, None, ()),
    ("😣", False, CHECK, WORSE, None, ()),
    ("😖😖", False, CHECK, WORSE, None, ()),
    ("😢", False, CHECK, WORSE, None, ()),
    ("👎", False, CHECK, WORSE, None, ()),
    ("mejor", False, CHECK, BETTER, None, ()),
    ("Mucho mejor, gracias", False, CHECK, BETTER, None, ()),
    ("igual", False, CHECK, SAME, None, ()),
    ("lo mismo", False, CHECK, SAME, None, ()),
    ("peor", False, CHECK, WORSE, None, ()),
    ("PEÓR", False, CHECK, WORSE, None, ()),
    ("no estoy mejor", False, CHECK, SAME, None, ()),
    ("el dolor no para", False, CHECK, WORSE, None, ()),
    ("Me duele mucho la espalda", False, CHECK, WORSE, None, ()),
    ("no me mandaron la cita", False, UNK, None, None, ()),
    # --- pain scores
    ("6", False, CHECK, None, 6, ()),
    ("0", False, CHECK, None, 0, ()),
    ("10", False, CHECK, None, 10, ()),
    ("6/10", False, CHECK, None, 6, ()),
    ("6 / 10", False, CHECK, None, 6, ()),
    ("2/10", False, CHECK, None, 2, ()),
    ("6 out of 10", False, CHECK, None, 6, ()),
    ("pain 6", False, CHECK, None, 6, ()),
    ("pain 2", False, CHECK, None, 2, ()),
    ("Pain is 6", False, CHECK, None, 6, ()),
    ("pain: 4", False, CHECK, None, 4, ()),
    ("about a 6", False, CHECK, None, 6, ()),
    ("a 6", False, CHECK, None, 6, ()),
    ("I'm at a 4 today", False, CHECK, None, 4, ()),
    ("dolor 6", False, CHECK, None, 6, ()),
    ("7 today", False, CHECK, None, 7, ()),
    ("8!", False, CHECK, None, 8, ()),
    ("worse, 8", False, CHECK, WORSE, 8, ()),
    ("better, 3/10", False, CHECK, BETTER, 3, ()),
    ("pain 5-6", False, CHECK, None, 6, ()),
    ("went from 8/10 to 5/10", False, CHECK, None, 5, ()),
    ("pain at 6/10", False, CHECK, None, 6, ()),
    ("down to 4 today, better", False, CHECK, BETTER, 4, ()),
    ("5 or 6", False, CHECK, None, 6, ()),
    ("6.5", False, CHECK, None, 7, ()),
    ("Pain is six", False, CHECK, None, 6, ()),
    ("seis de 10", False, CHECK, None, 6, ()),
    ("it's one of those days", False, UNK, None, None, ()),
    ("took 2 ibuprofen", False, UNK, None, None, ()),
    ("see you tomorrow at 10", True, CONF, None, None, ()),
    ("see you at 7 today", True, CONF, None, None, ()),
    ("11", False, UNK, None, None, ()),
    ("100", False, UNK, None, None, ()),
    ("-1", False, UNK, None, None, ()),
    ("pain 11/10", False, UNK, None, None, ()),
    ("walked 2 miles", False, UNK, None, None, ()),
    ("see you on 3/10", True, CONF, None, None, ()),
    # --- red flags
    ("worse, my leg is numb", False, RED, WORSE, None, (NUMB,)),
    ("numbness down my left leg", False, RED, None, None, (NUMB,)),
    ("tingling in my foot", False, RED, None, None, (NUMB,)),
    ("pins and needles in my legs", False, RED, None, None, (NUMB,)),
    ("numb in the saddle area", False, RED, None, None, (NUMB,)),
    ("can't feel my groin", False, RED, None, None, (NUMB,)),
    ("my leg is weak", False, RED, None, None, (WEAK,)),
    ("legs giving way", False, RED, None, None, (WEAK,)),
    ("my leg gave out on the stairs", False, RED, None, None, (WEAK,)),
    ("I can't control my bladder", False, RED, None, None, (BLADDER,)),
    ("wet myself last night", False, RED, None, None, (BLADDER,)),
    ("incontinence", False, RED, None, None, (BLADDER,)),
    ("cant pee", False, RED, None, None, (BLADDER,)),
    ("I have a fever", False, RED, None, None, (FEVER,)),
    ("temperature of 39", False, RED, None, None, (FEVER,)),
    ("feeling feverish and worse", False, RED, WORSE, None, (FEVER,)),
    ("I can't walk", False, RED, None, None, (WALK,)),
    ("cannot stand up", False, RED, None, None, (WALK,)),
    ("unable to walk, pain 9/10", False, RED, None, 9, (WALK,)),
    ("numb and weak leg, can't walk", False, RED, None, None, (NUMB, WEAK, WALK)),
    ("tengo entumecimiento en la pierna", False, RED, None, None, (NUMB,)),
    ("hormigueo", False, RED, None, None, (NUMB,)),
    ("debilidad en la pierna", False, RED, None, None, (WEAK,)),
    ("Tengo fiebre", False, RED, None, None, (FEVER,)),
    ("no puedo caminar", False, RED, None, None, (WALK,)),
    ("No puedo orinar", False, RED, None, None, (BLADDER,)),
    ("is numbness normal?", False, RED, None, None, (NUMB,)),
    ("numbness is better", False, RED, BETTER, None, (NUMB,)),
    ("walking is hard", False, RED, None, None, (WALK,)),
    ("I can barely walk", False, RED, None, None, (WALK,)),
    ("I can't get out of bed", False, RED, None, None, (WALK,)),
    ("had an accident last night", False, RED, None, None, (BLADDER,)),
    ("temp 38.5", False, RED, None, None, (FEVER,)),
    ("No fever but numb", False, RED, None, None, (NUMB,)),
    ("Help! I can't move my legs", False, RED, None, None, (WALK,)),
    ("I'm burning up", False, RED, None, None, (FEVER,)),
    ("collapsed in the kitchen", False, RED, None, None, (WEAK,)),
    ("Tengo la pierna dormida", False, RED, None, None, (NUMB,)),
    ("me fallan las piernas", False, RED, None, None, (WEAK,)),
    ("better, no numbness but some tingling", False, RED, BETTER, None, (NUMB,)),
    ("Confirmed. My leg has gone numb though", True, RED, None, None, (NUMB,)),
    # negated red flags don't count
    ("no numbness", False, UNK, None, None, ()),
    ("better, no fever", False, CHECK, BETTER, None, ()),
    ("not numb", False, UNK, None, None, ()),
    ("without tingling", False, UNK, None, None, ()),
    ("no numbness or tingling, just sore", False, UNK, None, None, ()),
    ("sin fiebre, mejor", False, CHECK, BETTER, None, ()),
    ("I don't have a fever", False, UNK, None, None, ()),
    ("hay fever is bad today", False, CHECK, WORSE, None, ()),
    ("can't stand the pain", False, CHECK, WORSE, None, ()),
    ("can I still do back walking next week?", False, UNK, None, None, ()),
    ("back walking is hard work", False, UNK, None, None, ()),
    ("temperature 37", False, UNK, None, None, ()),
    ("it's hard to get up in the morning", False, UNK, None, None, ()),
    ("no tengo fiebre ni hormigueo", False, UNK, None, None, ()),
    ("nope no numbness", False, UNK, None, None, ()),
    # --- anything else
    ("thanks!", False, UNK, None, None, ()),
    ("who is this", False, UNK, None, None, ()),
    ("ok", False, UNK, None, None, ()),
    ("ok", True, UNK, None, None, ()),
    ("Está bien, gracias", True, UNK, None, None, ()),
    ("", False, UNK, None, None, ()),
    ("   ", False, UNK, None, None, ()),
    ("?!", False, UNK, None, None, ()),
    ("si", False, UNK, None, None, ()),
]


@pytest.mark.parametrize(("text", "reminder_open", "intent", "answer", "pain", "red_flags"), CASES)
def test_real_world_replies(text, reminder_open, intent, answer, pain, red_flags):
    reply = interpret(text, reminder_open=reminder_open)
    assert (reply.intent, reply.answer, reply.pain, reply.red_flags) == (intent, answer, pain, red_flags)


def test_the_table_is_big_and_has_no_duplicates():
    assert len(CASES) >= 100
    keys = [(text, reminder_open) for text, reminder_open, *_ in CASES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("PEOR", "es"),
        ("Mucho mejor, gracias", "es"),
        ("no me escriban más", "es"),
        ("ALTO", "es"),
        ("dolor 6", "es"),
        ("no puedo caminar", "es"),
        ("si", "es"),
        ("worse", "en"),
        ("STOP", "en"),
        ("3", "en"),
        ("6/10", "en"),
        ("👍", "en"),
        ("", "en"),
        ("My back is mejor today thank you", "en"),
        ("sin hormigueo", "es"),
    ],
)
def test_language(text, language):
    assert interpret(text).language == language


def test_reply_defaults_and_values():
    reply = interpret("who is this")
    assert reply == Reply(Intent.UNKNOWN, language_clear=True)
    assert reply.language == "en"
    assert Reply(Intent.UNKNOWN) == Reply(Intent.UNKNOWN, None, None, (), "en", False)
    assert Intent.OPT_OUT == "opt_out" and str(Intent.RED_FLAG) == "red_flag"


def test_red_flags_come_in_a_fixed_order():
    reply = interpret("can't walk, fever, can't pee, legs weak and numb")
    assert reply.red_flags == (NUMB, WEAK, BLADDER, FEVER, WALK)


def test_stop_far_into_a_long_message_is_still_read():
    assert interpret("x" * 1500 + " stop texting me").intent == OUT


# --------------------------------------------------------------------------------------------------
# Properties

KEYWORDS = [
    "stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out", "stop all",
    "alto", "parar", "baja", "cancelar",
]
_PUNCTUATION = string.punctuation + string.whitespace + "¡¿…“”‘’«» \u00a0\u2028\u3000"
_SURROUND = st.text(alphabet=st.sampled_from(_PUNCTUATION), max_size=6)


@st.composite
def any_case(draw, word):
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if up else c for c, up in zip(word, flips, strict=True))


@given(st.text())
@settings(max_examples=500)
def test_never_raises_on_any_text(text):
    for reminder_open in (False, True):
        reply = interpret(text, reminder_open=reminder_open)
        assert isinstance(reply.intent, Intent)
        assert reply.pain is None or 0 <= reply.pain <= 10
        assert reply.answer in (None, BETTER, SAME, WORSE)
        assert reply.language in ("en", "es")


@given(st.text(min_size=1_000, max_size=50_000))
@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_never_raises_on_huge_text(text):
    interpret(text)


@given(st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "P", "S", "M"])))
def test_never_raises_on_controls_marks_and_symbols(text):
    interpret(text)


@given(data=st.data(), keyword=st.sampled_from(KEYWORDS), before=_SURROUND, after=_SURROUND,
       reminder_open=st.booleans())
def test_opt_out_keyword_in_any_case_and_punctuation_is_opt_out(data, keyword, before, after, reminder_open):
    text = before + data.draw(any_case(keyword)) + after
    assert interpret(text, reminder_open=reminder_open).intent == OUT


@given(text=st.text(max_size=300), reminder_open=st.booleans())
def test_a_stop_line_anywhere_opts_out(text, reminder_open):
    assert interpret(text + "\nSTOP", reminder_open=reminder_open).intent == OUT
    assert interpret("Stop.\n" + text, reminder_open=reminder_open).intent == OUT


@given(n=st.integers(0, 10), fmt=st.sampled_from(["{n}/10", "pain {n}", "{n} / 10", "Pain {n}/10"]))
def test_pain_score_formats(n, fmt):
    reply = interpret(fmt.format(n=n))
    assert (reply.intent, reply.pain) == (CHECK, n)


@given(n=st.integers(11, 10_000) | st.integers(-10_000, -1))
def test_numbers_outside_the_scale_are_not_pain(n):
    assert interpret(str(n)).pain is None
    assert interpret(f"pain {n}").pain is None


@given(noise=st.lists(st.sampled_from(["thanks", "thank you", "!!", "...", "ty", "x", "🙏", "today", "sadly",
                                       "tbh", "ok", ":(", "lol", "honestly", "Thanks!"]), max_size=4))
def test_friendly_noise_keeps_worse(noise):
    reply = interpret(" ".join(["worse", *noise]))
    assert (reply.intent, reply.answer) == (CHECK, WORSE)
    assert interpret(" ".join([*noise, "worse"])).answer == WORSE

"""Read a client's SMS reply and say what it means.

Pure (stdlib only): the webhook hands over the text, acts on the Reply. Two mistakes hurt a person and
shape every choice below:
- texting someone who asked us to stop: opt-out wording is read generously and outranks everything;
- missing a red flag: red-flag wording is read generously, reported whatever the intent, and only a
  simple direct negation ("no numbness", "sin fiebre") cancels it.
A third shapes the first step: phones send a reaction to one of our texts as a text that quotes it
("Liked “Reply 1 better, 2 same, 3 worse…”"), full of our own answer words. A message that is exactly
a reaction is read as nothing else; one word more and it is read as an ordinary message.
Everything is matched on a folded copy of the text (casefolded, NFKC, accents and apostrophes removed),
so the word lists below are written in plain lower-case ASCII: "peór" and "PEOR" both read "peor",
"can't" and "can’t" both read "cant".
"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Intent(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    CHECKIN = "checkin"
    CONFIRM = "confirm"
    RESCHEDULE = "reschedule"
    RED_FLAG = "red_flag"
    REACTION = "reaction"  # a phone's like/love/... of one of our texts: never an answer
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Reply:
    intent: Intent
    answer: str | None = None  # "better" | "same" | "worse" when the text says so
    pain: int | None = None  # 0-10 when the text gives a score
    red_flags: tuple[str, ...] = ()  # detected whatever the intent, in RED_FLAGS order
    language: str = "en"  # "es" when the text is recognisably Spanish, else "en"
    language_clear: bool = False  # enough words to say so ("3" or "STOP" are in no language)

    def answer_language(self, usual: str) -> str:
        """Answer in the language the client wrote in when that is clear, else in their usual one."""
        return self.language if self.language_clear else usual


BETTER, SAME, WORSE = "better", "same", "worse"
ANSWERS = (BETTER, SAME, WORSE)  # a check-in's answers, mildest first: every module checks these
NUMBNESS, LEG_WEAKNESS, BLADDER_BOWEL, FEVER, CANNOT_WALK = (
    "numbness",
    "leg_weakness",
    "bladder_bowel",
    "fever",
    "cannot_walk",
)
RED_FLAGS = (NUMBNESS, LEG_WEAKNESS, BLADDER_BOWEL, FEVER, CANNOT_WALK)

# An SMS body is at most 1,600 characters (Twilio joins longer ones no further), so this sees every
# real message whole while bounding the work on anything else (NFKC expands text at most 18-fold).
MAX_CHARS = 1600


# --------------------------------------------------------------------------------------------------
# Normalisation


@dataclass(frozen=True)
class _Text:
    """The folded message: `raw` keeps punctuation and emoji; each clause is space-joined words."""

    raw: str
    clauses: tuple[str, ...]

    @property
    def joined(self) -> str:
        """Clauses kept apart, so a phrase never matches across a full stop or comma."""
        return " | ".join(self.clauses)

    @property
    def flat(self) -> str:
        """All words, punctuation gone: what "the whole message" means for keywords."""
        return " ".join(self.clauses)


_APOSTROPHES = re.compile("['’‘`´ʼ′]")
_SPACED_SLASH = re.compile(r"([0-9])\s*[/⁄∕]\s*([0-9])")  # "6 / 10" reads as "6/10"
# A clause ends at . , (not inside a number like 38.5 or 6,5), ! ? ; brackets and line breaks.
_CLAUSE_BREAK = re.compile(r"(?<![0-9])[.,]|[.,](?![0-9])|[!?;()\[\]{}\n\r¡¿]")
# A word: letters/digits; digits may be joined by / : . , - ("6/10", "3:30", "38.5", "5-6"); a minus
# sign is kept only at the start of a word ("-1" is not the menu answer 1).
_WORD = re.compile(r"(?:(?<!\S)-(?=[0-9]))?[^\W_]+(?:(?<=[0-9])[/:.,-](?=[0-9])[^\W_]+)*")


def _fold(text: str) -> _Text:
    """Casefold, NFKC, strip accents and apostrophes, split into clauses of words."""
    text = unicodedata.normalize("NFKC", text.strip()[:MAX_CHARS]).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn")
    text = _APOSTROPHES.sub("", text)
    # Collapse whitespace within lines only: a line of its own ("...\nSTOP") is a clause of its own.
    text = "\n".join(" ".join(line.split()) for line in text.splitlines())
    text = _SPACED_SLASH.sub(r"\1/\2", text)
    clauses = (" ".join(_WORD.findall(part)) for part in _CLAUSE_BREAK.split(text))
    return _Text(raw=text, clauses=tuple(c for c in clauses if c))


# --------------------------------------------------------------------------------------------------
# Reactions. An iPhone sends a reaction (tapback) to a phone that is not an iPhone as a text: a verb,
# then the text it reacts to in quotes, cut short with "…" when long. Android apps write their own
# verbs, and Google Messages wraps the parts in invisible spaces instead of quotes. Spanish iPhones
# write Spanish verbs. Only a message that is exactly such a reaction counts: no word may follow it.

_QUOTES = "\"“”„‟«»‘’‚‛'"
_EMOJI = rf"[^\w\s{_QUOTES}]{{1,16}}"  # a reaction's emoji (skin tone included): no letters or digits
_REACTION_VERBS = {
    "en": (r"liked|loved|disliked|laughed at|emphasi[sz]ed|questioned"
           r"|removed an? (?:like|heart|dislike|laugh|exclamation(?: point| mark)?|emphasis"
           r"|question mark) from"
           rf"|reacted (?:with )?{_EMOJI} to|removed {_EMOJI} from|{_EMOJI} to"),
    # Folded like everything else: "Le gustó" reads "le gusto", "Se rió de" reads "se rio de".
    "es": (r"(?:no )?le (?:gusto|gusta|encanto|encanta)|le dio risa|se rio de|enfatizo|destaco"
           rf"|exclamo por|cuestiono|dudo sobre|reacciono (?:con )?{_EMOJI} a"),
}
# The quoted text runs to the end: a closing quote, or the "..." of a text cut short.
_REACTIONS = tuple(
    (language, re.compile(rf"(?:{verbs}) ?[{_QUOTES}](?s:.+)(?:[{_QUOTES}]|(?<=\.\.\.))"))
    for language, verbs in _REACTION_VERBS.items()
)
# Google Messages: hair space, verb, the emoji between zero-width spaces (non-joiners when taking a
# reaction back), hair space, the text reacted to, hair space, hair space.
_GOOGLE_REACTION = re.compile("\u200a[^\u200a\u200b\u200c]*([\u200b\u200c])[^\u200b\u200c]{1,16}\\1"
                              "[^\u200a\u200b\u200c]*\u200a(?s:.*)\u200a[^\u200a]*\u200a")


def _reaction(text: str) -> str | None:
    """The language of a reaction's verb when the whole message is a reaction, else None."""
    text = text[:MAX_CHARS]
    if _GOOGLE_REACTION.fullmatch(text.strip("\r\n ")):
        return "en"
    # Folded, but quotes, emoji and "..." kept; invisible marks and variation selectors dropped.
    plain = unicodedata.normalize("NFKC", text).casefold()
    plain = "".join(c for c in unicodedata.normalize("NFKD", plain)
                    if unicodedata.category(c) not in ("Mn", "Cf"))
    plain = " ".join(plain.split())
    return next((language for language, pattern in _REACTIONS if pattern.fullmatch(plain)), None)


# --------------------------------------------------------------------------------------------------
# Rule tables. Each rule knows its language, so the reply can be answered in the client's language.


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    value: str
    lang: str
    negatable: bool = False  # red flags only: may a "no"/"not"/"sin" just before it cancel it?


def _rules(value: str, lang: str, *patterns: str, negatable: bool = False) -> tuple[_Rule, ...]:
    return tuple(_Rule(re.compile(p), value, lang, negatable) for p in patterns)


# Politeness that may follow a keyword without changing the whole-message reading ("STOP please").
_TAIL = r"(?: (?:please|pls|plz|now|thanks|thank you|thankyou|thx|ty|ok|okay|por favor|gracias))*"


def _whole(value: str, lang: str, *keywords: str) -> _Rule:
    """A rule matching a message that is only these keywords (repeated), politely."""
    alt = "|".join(keywords)
    pattern = rf"(?:(?:please|pls|por favor) )?(?:{alt})(?: (?:{alt}))*{_TAIL}"
    return _Rule(re.compile(pattern), value, lang)


def _fullmatch(rules: tuple[_Rule, ...], text: str, hits: list[str]) -> str | None:
    for rule in rules:
        if rule.pattern.fullmatch(text):
            hits.append(rule.lang)
            return rule.value
    return None


def _search(rules: tuple[_Rule, ...], text: str, hits: list[str]) -> set[str]:
    found = set()
    for rule in rules:
        if rule.pattern.search(text):
            found.add(rule.value)
            hits.append(rule.lang)
    return found


_OPT_OUT, _OPT_IN, _HELP = "opt_out", "opt_in", "help"
_CONFIRM, _RESCHEDULE = "confirm", "reschedule"

# Twilio's own opt-out keywords (it blocks the number itself on these, so we must agree), and Spanish.
OPT_OUT_KEYWORDS = (
    _whole(_OPT_OUT, "en", "stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "revoke",
           "optout", "opt out", "stop it"),
    _whole(_OPT_OUT, "es", "alto", "parar", "baja", "cancelar", "darme de baja"),
)
# A sentence of its own that is an unambiguous keyword ("STOP. Wrong number") also opts out. CANCEL and
# END are left out: alone in a sentence they are as likely about an appointment or a walk.
OPT_OUT_SENTENCE = (
    _whole(_OPT_OUT, "en", "stop", "stopall", "stop all", "unsubscribe", "quit", "revoke", "optout",
           "opt out", "stop it"),
    _whole(_OPT_OUT, "es", "alto", "parar"),
)
_MESSAGES = r"(?:texts?|txts?|messages?|msgs?|sms|texting|messaging|notifications?|alerts?|reminders?)"
_MENSAJES = r"(?:mensajes|textos|sms|recordatorios|notificaciones|avisos)"
# Consent may be revoked "in any reasonable manner": plain-language requests, anywhere in the message.
OPT_OUT_PHRASES = _rules(
    _OPT_OUT, "en",
    r"\b(?:stop|quit|cease|end) (?:texting|txting|texing|messaging|msging|sending|contacting|bugging"
    r"|bothering|spamming)\b",
    rf"\bstop (?:all |these |the |your |this |those |any |my )?{_MESSAGES}\b",
    r"\b(?:cancel|end|quit) (?:all |these |the |your |this |those |my )?(?:texts?|messages?|subscription)\b",
    # (not "don't call/email me": that is about another channel, and may come with "text instead")
    r"\b(?:dont|do not|never) (?:ever )?(?:text|txt|message|msg|sms|contact|send)"
    r"(?: me| us| this number| anymore| any more| again)\b(?! (?:\w+ )?(?:e ?mails?|letters?)\b)",
    rf"\bno (?:more|further) (?:{_MESSAGES}|contact)\b",
    r"\bunsubscribe\b",
    r"\bopt (?:me )?out\b|\boptout\b",
    r"\b(?:remove|delete) (?:me|my number|my phone(?: number)?|this number|my details|my info)\b",
    r"\btake (?:me|my number|this number) (?:off|out)\b",
    r"\bleave me alone\b",
    rf"\b(?:dont|do not|no longer|never) (?:want|wish|need|like)(?: \w+){{0,3}} {_MESSAGES}\b",
    r"\bwrong (?:number|person)\b",
)
OPT_OUT_PHRASES_ES = _rules(
    _OPT_OUT, "es",
    r"\bno me (?:escriban|escribas|escriba|manden|mandes|mande|envien|envies|envie|contacten|contactes"
    r"|contacte|textees|texteen|molesten|molestes)\b",
    rf"\b(?:no|ya no) quiero (?:(?:recibir|mas|estos|sus|los|ningun|ningunos|tus|sms) )*{_MENSAJES}\b",
    r"\b(?:dejen|deja|deje|dejar|paren|pare|para) de "
    r"(?:enviar|mandar|escribir|textear|contactar|molestar)\w*",
    r"\b(?:darme|dame|denme|deme|dar|darse|me doy) de baja\b",
    rf"\b(?:no|basta de) mas {_MENSAJES}\b|\bbasta de {_MENSAJES}\b",
    r"\b(?:borr|quit|sac|elimin)\w*(?: \w+)? de (?:la |su |esta |sus |vuestra )?lista\b",
    r"\bnumero equivocado\b|\bequivocado de numero\b",
)

# Twilio re-subscribes on START/UNSTOP/YES; "yes" is read as a confirmation while a reminder is open.
OPT_IN_KEYWORDS = (
    _whole(_OPT_IN, "en", "start", "unstop", "opt in", "optin"),
    _whole(_OPT_IN, "es", "empezar", "alta"),
)
_YES = (_whole(_OPT_IN, "en", "yes"),)
HELP_KEYWORDS = (
    _whole(_HELP, "en", "help", "help me", "info", "information"),
    _whole(_HELP, "es", "ayuda", "informacion"),
)

CONFIRM_KEYWORDS = (
    _whole(_CONFIRM, "en", "c", "confirm", "confirmed"),
    _whole(_CONFIRM, "es", "confirmo", "confirmado", "confirmada"),
)
# Only while a reminder is open is a bare "yes" about the appointment.
YES_WHILE_REMINDER = (
    _whole(_CONFIRM, "en", "yes", "y", "yep", "yeah", "yea", "yup", "sure"),
    _whole(_CONFIRM, "es", "si", "sip", "claro"),
)
RESCHEDULE_KEYWORDS = (
    _whole(_RESCHEDULE, "en", "r", "reschedule"),
    _whole(_RESCHEDULE, "es", "reprogramar", "cambiar"),
)
CONFIRM_PHRASES = _rules(
    _CONFIRM, "en",
    r"\bconfirm(?:ed|ing)?\b",
    r"\b(?:i|ill|i will|we|well|we will|will) be there\b",
    r"\bsee (?:you|ya|u)\b",
    r"\b(?:i|we) (?:can|will) (?:make it|come|attend)\b",
    r"\bcount me in\b",
) + _rules(
    _CONFIRM, "es",
    r"\bconfirm(?:o|ado|ada|amos)\b",
    r"\b(?:alli|ahi|alla) (?:estare|estaremos|voy|nos vemos)\b",
    r"\bnos vemos\b",
    r"\bsi (?:voy|puedo ir|asistire)\b|\basistire\b",
)
_DAYS = (r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday"
         r"|mon|tue|tues|wed|thu|thur|thurs|fri|sat)")
_DIAS = r"(?:lunes|martes|miercoles|jueves|viernes|sabado|domingo)"
_APPOINTMENT = r"(?:appointment|appt|appointement|apointment|session|booking|visit|time|slot|date)"
# "Friday is better" is about the appointment, not the back: read as a reschedule, and hidden from the answer.
SCHEDULE_PREFERENCE = _rules(
    _RESCHEDULE, "en",
    rf"\b(?:{_DAYS}|weekend|tomorrow|next week|end of (?:the )?week|later|earlier|another day"
    r"|a different day|[0-9]{1,2}(?::[0-9]{2})?(?:am|pm))\b(?: \w+){0,3}? "
    r"(?:is|would be|works|suits me|suits) better\b",
    r"\b(?:is|would be|will be|works|work|suits) better for (?:me|us)\b",
) + _rules(
    _RESCHEDULE, "es",
    rf"\b(?:{_DIAS}|fin de semana|otro dia|la semana que viene|la proxima semana)\b(?: \w+){{0,3}}? "
    r"(?:es|seria|me queda|queda|me va) mejor\b",
    rf"\bmejor (?:el|la|en la|por la) (?:{_DIAS}|semana que viene|proxima semana)\b",
)
RESCHEDULE_PHRASES = SCHEDULE_PREFERENCE + _rules(
    _RESCHEDULE, "en",
    r"\bre ?schedul\w*",
    r"\b(?:can|could|may) (?:we|i|you) (?:move|change|shift|push|switch|swap|postpone)\b",
    r"\b(?:move|push|postpone|change) it\b",
    rf"\b(?:change|move|cancel|postpone|push back|push|shift|switch|swap)\b(?: \w+){{0,3}}? {_APPOINTMENT}\b",
    r"\b(?:need|have|got|want|going|gotta|must) to cancel\b|\bcancel (?:it|that|tomorrow)\b",
    r"\b(?:can|could) (?:you|we|i) cancel\b",
    r"\b(?:cant|cannot|can not|wont|will not|unable to|not able to|wont be able to|not going to|not gonna)"
    r" (?:make it|come|attend|be there|come in)\b",
    r"\b(?:different|another|other|later|earlier|new) (?:day|time|date|slot)\b",
) + _rules(
    _RESCHEDULE, "es",
    r"\breprogram\w*",
    r"\b(?:cambiar|mover|cancelar|posponer|aplazar|cambio|cambiemos)\b(?: \w+){0,3}? "
    r"(?:cita|hora|fecha|sesion|turno)\b",
    r"\bno (?:puedo|podre|voy a poder|podemos|podria) (?:ir|asistir|llegar|venir)\b",
    r"\botr[oa] (?:dia|hora|fecha)\b",
)
# A thumbs-up alone, sent while a reminder is open, answers the reminder (not "my back is better").
_OK_EMOJI = "👍👌✅✔☑🆗"
_SKIN_TONES = "\U0001F3FB-\U0001F3FF"
_OK_EMOJI_RE = re.compile(rf"[{_OK_EMOJI}]")
_OTHER_SYMBOLS = re.compile(rf"[^\w\s{_OK_EMOJI}{_SKIN_TONES}.,!]")


def _thumbs_up_only(text: _Text) -> bool:
    """A thumbs-up with at most "ok"/"thanks" around it."""
    raw = text.raw
    return bool(_OK_EMOJI_RE.search(raw)) and not _OTHER_SYMBOLS.search(raw) and not _core(text.flat)


# --------------------------------------------------------------------------------------------------
# How the back feels. Tables are applied in order and each match is blanked out, so "not better" is
# read as "same" before the plain word "better" can claim it. When several remain, worse beats
# better beats same: a mixed message ("better this morning, worse tonight") should reach the clinic.

_MORE = (r"(?:(?:much|a lot|lots|alot|way|loads|heaps|so much|a bit|a little|a tad|slightly|bit|little"
         r"|somewhat|even|far|getting|feeling|feel|mucho|un poco|algo|bastante|muchisimo) )*")
_BETTER_WORD = r"(?:b+e+t+e*r+|b+e+tt+a+|b+e+tt+e+r*|bttr|btr|bettre|improv\w*)"
_WORSE_WORD = r"(?:w+o+r+s+e*|wrose|wose|wrse|worsr|worze|worce|worst|worsen\w*)"
ANSWER_RULES = (
    # Fixed expressions that contain a word of the opposite meaning.
    *_rules(BETTER, "en", r"\b(?:couldnt|could not|never) (?:be|been|felt|feel) better\b",
            r"\bnot (?:(?:so|too|that|as|very|really|even) )*(?:bad|sore|painful)\b",
            r"\b(?:isnt|aint|wasnt) (?:(?:so|too|that|as|very) )*bad\b",
            r"\b(?:doesnt|dont|does not|do not|no longer|not) (?:really )?hurt(?:s|ing)?\b",
            r"\bno (?:more |longer )?(?:pain|soreness)\b|\bpain ?free\b"),
    *_rules(WORSE, "en", r"\b(?:couldnt|could not) (?:be|get|feel) worse\b",
            r"\b(?:not|no|isnt|not feeling|not doing|not so|not too|not very) "
            r"(?:(?:so|too|very|that|feeling|doing|really|all that) )*(?:good|great|well)\b",
            r"\b(?:wont|doesnt|does not|will not|cant|cannot|wont ever) stop (?:hurting|aching)\b",
            r"\bpain (?:wont|doesnt|will not|does not) (?:stop|go away|ease)\b",
            r"\b(?:cant|cannot|can not) (?:stand|take|bear) (?:the |this |it)"),
    *_rules(BETTER, "es", r"\bno (?:esta |es )?(?:tan |muy )?mal\b", r"\b(?:ya )?no me duele\b",
            r"\bsin dolor\b|\bduele menos\b|\bmenos dolor\b"),
    *_rules(WORSE, "es", r"\b(?:no|nada) (?:(?:muy|tan|estoy|me siento|esta|se siente|me encuentro) )*"
            r"(?:bien|buena|bueno)\b",
            r"\b(?:el dolor|me duele|duele) no (?:para|se va|se quita|cede)\b|\bno para de doler\b"),
    *_rules(SAME, "en", r"\bcould be (?:better|worse)\b",
            r"\b(?:not|no|isnt|aint|hasnt|havent|doesnt|dont|didnt|never|hardly|barely|nothing|none) "
            r"(?:(?:feel|feeling|getting|get|got|any|much|really|that|a lot|at all|even|a bit|a little"
            r"|noticeably|very|too|so|been|is|it|its|any more|anymore) )*"
            rf"(?:{_BETTER_WORD}|{_WORSE_WORD}|different|change|changed|difference|relief)\b"),
    *_rules(SAME, "es", r"\bni mejor ni peor\b",
            r"\bno (?:(?:estoy|me siento|esta|siento|se siente|me encuentro|noto|veo|hay|ha|muy|mucho) )*"
            r"(?:mejor|peor|mejoria|cambio|cambios|diferencia)\b"),
    # Plain words, typos included.
    *_rules(WORSE, "en", rf"\b{_MORE}{_WORSE_WORD}\b",
            r"\b(?:hurts?|hurting|aching|aches|sore|painful) (?:a lot |a bit |even |much |way )?more\b",
            r"\bmore (?:pain|painful|sore|soreness|hurt|aching|stiff)\b|\bsorer\b",
            r"\bpain (?:is|went|has gone|going) up\b|\bincreased pain\b|\bpain (?:has )?increased\b",
            r"\b(?:awful|terrible|horrible|horrendous|dreadful|agony|agonizing|excruciating|unbearable"
            r"|severe)\b",
            r"\b(?:really |very |so |pretty |quite )?bad\b",
            r"\bkilling me\b|\b(?:hurts|hurting|aching) (?:a lot|so much|like hell|badly)\b"
            r"|\breally hurts\b|\b(?:so much|lots of|a lot of|loads of) pain\b"),
    *_rules(WORSE, "es", rf"\b{_MORE}peor\b", r"\b(?:muy |bastante )?mal\b|\bfatal\b",
            r"\b(?:me )?duele (?:mas|mucho|muchisimo)\b|\bmas dolor\b|\bmucho dolor\b",
            r"\binsoportable\b"),
    *_rules(BETTER, "en", rf"\b{_MORE}{_BETTER_WORD}\b",
            r"\b(?:(?:feeling|feel|feels|doing|im|its|all) )?(?:(?:so|very|really|pretty|quite) )?"
            r"(?:good|great|awesome|amazing|excellent|fantastic|wonderful|relieved)\b",
            r"\b(?:feeling|feel|feels|doing) (?:(?:so|very|really|pretty|quite) )?(?:well|fine)\b",
            r"\b(?:hurts?|hurting|aching|sore|painful) less\b",
            r"\bless (?:pain|painful|sore|soreness|hurt|stiff)\b",
            r"\bpain (?:is|went|has gone|going) down\b"),
    *_rules(BETTER, "es", rf"\b{_MORE}mejor\b|\bmejorando\b|\bmejoro\b",
            r"\b(?:muy |super |bastante )?bien\b|\bgenial\b|\bexcelente\b|\bestupendo\b"),
    *_rules(SAME, "en", r"\b(?:(?:about|pretty much|much|still|more or less|just) )?(?:the )?"
            r"(?:same|saem|smae|saame|samee)\b",
            r"\b(?:unchanged|similar|so so|meh|no different)\b"),
    *_rules(SAME, "es", r"\b(?:sigue |sigo |todo |mas o menos )?igual\b|\blo mismo\b|\bmas o menos\b"
            r"|\bsin cambios?\b|\bparecido\b"),
)
# Typos too short to trust inside a sentence ("Sam" is also a name).
ANSWER_WHOLE = (_Rule(re.compile(r"(?:the )?sam"), SAME, "en"), _Rule(re.compile(r"regular"), SAME, "es"))
MENU = {"1": BETTER, "2": SAME, "3": WORSE}
ANSWER_EMOJI = (
    (BETTER, re.compile(r"[👍🙂😀😊😃😄😁🙌👌💪☺]|(?<!\S)[:;=]-?[)\]d](?!\S)")),
    (SAME, re.compile(r"[😐😑🤷😶]|(?<!\S)[:=]-?[|/\\](?!\S)")),
    (WORSE, re.compile(r"[😣😖😢👎😭😫😩😞☹🙁😔😰😟🤕😥😓😿]|(?<!\S)[:;=]-?[(\[](?!\S)")),
)
_GREETINGS = re.compile(r"\b(?:good (?:morning|afternoon|evening|night|day)|goodnight|buenos dias|buenas "
                        r"(?:tardes|noches))\b|^(?:ok|okay|esta bien|ta bien|vale|bueno)\b")
_BLANK = " # "  # replaces a consumed match: not a word, so later patterns cannot reach across it


def _answer(text: _Text, hits: list[str]) -> tuple[str | None, str]:
    """The better/same/worse reading and the text left after consuming it (for the number rules)."""
    rest = text.joined
    for rule in SCHEDULE_PREFERENCE:
        rest = rule.pattern.sub(_BLANK, rest)
    rest = _GREETINGS.sub(_BLANK, rest)
    found: set[str] = set()
    for rule in ANSWER_RULES:
        rest, n = rule.pattern.subn(_BLANK, rest)
        if n:
            found.add(rule.value)
            hits.append(rule.lang)
    found |= {v} if (v := _fullmatch(ANSWER_WHOLE, _core(text.flat), hits)) else set()
    found |= {value for value, pattern in ANSWER_EMOJI if pattern.search(text.raw)}
    return _most_concerning(found), rest


def _most_concerning(answers: set[str]) -> str | None:
    return next((a for a in (WORSE, BETTER, SAME) if a in answers), None)


# --------------------------------------------------------------------------------------------------
# Pain scores. A number is only a score where the wording says so ("6/10", "pain 6", "a 6", "7 today")
# or where it stands alone; times, dates, counts and durations are not scores.

_NUM = r"[0-9]{1,3}(?:[.,][0-9]+)?"
_SCORE = rf"(?<!\S)(?P<n>{_NUM}(?:(?:-| to | or | o ){_NUM})?)"
_UNITS = (r"(?! (?:am|pm|a m|p m|oclock|o clock|h|hr|hrs|hour|hours|min|mins|minutes?|secs?|seconds?|days?"
          r"|nights?|weeks?|wks?|months?|years?|yrs?|times?|x|miles?|km|k|kms|steps|pills?|tablets?"
          r"|ibuprofen|advil|tylenol|mg|percent|dias?|horas?|semanas?|meses|mes|anos|veces|pastillas?"
          r"|de la|y media|kg|lbs?|pounds?|st|nd|rd|th|people|person|sessions?|visits?|of|more|things?)\b)")
_LEAD = r"(?:(?:a|an|un|una|about|like|maybe|probably|roughly|around a|at a|at an|solid|its|is|it|en) )*"
_WEEKDAYS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun "
    "lunes martes miercoles jueves viernes sabado domingo".split()
)
# A date ("on 3/10") or an old value ("from 8/10 to 5/10") is not today's score.
_DATE_WORDS = _WEEKDAYS | frozenset("on by until till til before after since from the el del".split())
# A time ("see you at 7 today") is not a score.
_TIME_WORDS = _WEEKDAYS | frozenset("at by until till til before after around from on las la".split())
# (pattern, guard): a match is dropped when the word before it is in the guard set.
PAIN_PATTERNS = (
    (re.compile(rf"{_SCORE}(?:/| out of | of | de | sobre )10(?!\S)"), _DATE_WORDS),
    (re.compile(rf"\b(?:pain|dolor|pain level|pain score|level|nivel|score|puntuacion)(?: (?:is|was|es|de|at|"
                rf"about|around|of|level|score|today|now|hoy|ahora|maybe|like|a|an|un|una|currently|still|right"
                rf"|esta|en|its|probably|roughly))* {_SCORE}(?:/10)?(?!\S){_UNITS}"), frozenset()),
    (re.compile(rf"\b(?:a|an|un|una) {_SCORE}(?!\S){_UNITS}"), frozenset()),
    (re.compile(rf"\b(?:im|i am|its|it is|back is|back|estoy|esta|feels|feel|feeling|today|hoy|now|ahora"
                rf"|tonight|currently) {_LEAD}{_SCORE}(?!\S){_UNITS}"), frozenset()),
    (re.compile(rf"{_SCORE} (?:today|now|tonight|right now|this morning|this evening|hoy|ahora|esta manana"
                r"|at the moment|atm|currently)\b"), _TIME_WORDS),
)
_LONE_SCORE = re.compile(rf"{_NUM}(?:(?:-| to | or | o ){_NUM})?")
NUMBER_WORDS = {
    word: str(n)
    for words in ("zero one two three four five six seven eight nine ten",
                  "cero uno dos tres cuatro cinco seis siete ocho nueve diez")
    for n, word in enumerate(words.split())
}
_NUMBER_WORD = re.compile(rf"\b(?:{'|'.join(NUMBER_WORDS)})\b")
# Words that may surround a lone score or menu digit without changing it ("7 thanks", "hi, 3").
_FILLER = re.compile(
    r"\b(?:hi|hello|hey|hola|thanks|thank you|thankyou|thx|ty|please|pls|plz|ok|okay|gracias|por favor"
    r"|today|tonight|now|right now|this morning|this evening|currently|still|hoy|ahora|esta manana"
    r"|esta noche|todavia|aun|option|number|opcion|numero)\b|[#|]"
)
_SCORE_FILLER = re.compile(
    r"\b(?:about|around|maybe|probably|prob|approx|approximately|roughly|i think|i guess|id say|i would say"
    r"|pain|my pain|dolor|level|my back|back|its|it is|im|i am|like|creo que|creo|como|honestly|so far"
    r"|at the moment|atm|um|hmm|lol|than yesterday|que ayer)\b"
)


def _core(words: str, *fillers: re.Pattern[str]) -> str:
    for filler in (_FILLER, *fillers):
        words = filler.sub(" ", words)
    return " ".join(words.split())


def _score(number: str) -> int | None:
    """ "6" -> 6; "6.5" -> 7 and "5-6" -> 6 (the higher reading, to err towards concern); else None."""
    try:
        values = [float(v.replace(",", ".")) for v in re.split(r"-| to | or | o ", number)]
    except ValueError:
        return None
    top = max(values)
    return int(top + 0.5) if all(0 <= v <= 10 for v in values) else None


def _pain(text: _Text, rest: str) -> tuple[int | None, str | None]:
    """(pain score, menu answer): "1"/"2"/"3" alone answer the menu; other lone numbers are scores."""
    flat, rest = _digits(text.flat), _digits(rest)
    core = _core(rest)
    if core in MENU:  # before "N today": "3 today" answers the menu
        return None, MENU[core]
    for pattern, guard in PAIN_PATTERNS:
        for m in pattern.finditer(flat):
            before = flat[: m.start()].split()
            if before and before[-1] in guard:
                continue
            if (score := _score(m["n"])) is not None:
                return score, None
    for clause in (core, *rest.split("|")):
        lone = _core(clause, _SCORE_FILLER)
        if _LONE_SCORE.fullmatch(lone) and (score := _score(lone)) is not None:
            return score, None
    return None, None


def _digits(words: str) -> str:
    """ "six" -> "6", "seis" -> "6": scores are often written out."""
    return _NUMBER_WORD.sub(lambda m: NUMBER_WORDS[m[0]], words)


# --------------------------------------------------------------------------------------------------
# Red flags. Read generously; only a simple negation right before the words cancels them ("no fever",
# "not numb", "without tingling", "sin fiebre", and "no numbness or tingling" for both).

_LIMB = r"(?:leg|legs|foot|feet|toes?|groin|bum|butt|buttocks?|bottom|thighs?|knees?)"
_TEMP = r"(?:37[.,][5-9]|3[89](?:[.,][0-9])?|4[0-3](?:[.,][0-9])?|99[.,][5-9]|1[01][0-9](?:[.,][0-9])?)"
_STAND = r"stand(?:ing)?(?! (?:it|the|this|that|him|her|them|you|how|being|when|my|your|his|people|anyone)\b)"
RED_FLAG_RULES = (
    *_rules(NUMBNESS, "en", r"\bnumb(?:ness|ed|ing|y)?\b", r"\btingl\w*", r"\bpins (?:and |n )?needles\b",
            r"\bsaddle\b", rf"\b{_LIMB}\b(?: \w+){{0,3}}? (?:asleep|dead)\b", negatable=True),
    *_rules(NUMBNESS, "en", r"\b(?:no|lost|losing|loss of|lose|lack of) (?:feeling|sensation)\b",
            rf"\b(?:cant|cannot|can not|couldnt|could not) feel (?:my |the )?{_LIMB}\b"),
    *_rules(NUMBNESS, "es", r"\bentumec\w*", r"\bhormigue\w*", r"\badormec\w*", r"\bcosquilleo\b",
            r"\b(?:pierna|piernas|pie|pies)\b(?: \w+){0,2}? dormid[oa]s?\b", negatable=True),
    *_rules(NUMBNESS, "es",
            r"\bno siento (?:la |las |el |los |mi |mis )?(?:pierna|piernas|pie|pies|ingle)\b"),
    *_rules(LEG_WEAKNESS, "en", r"\bweak\w*",
            r"\b(?:leg|legs|knee|knees)\b(?: \w+){0,3}? (?:gave out|gave way|give out|give way|gives out"
            r"|gives way|giving out|giving way|buckl\w*|jelly|wobbly|heavy)\b",
            r"\bfoot drop\b|\bdrop foot\b|\bcollaps\w*|\bfell (?:over|down)\b", negatable=True),
    *_rules(LEG_WEAKNESS, "es", r"\bdebil\w*",
            r"\b(?:se me doblan|se me dobla|me fallan|me falla) (?:las |la )?(?:pierna|piernas|rodillas?)\b",
            negatable=True),
    *_rules(BLADDER_BOWEL, "en", r"\bbladder\b", r"\bbowels?\b", r"\bincontinen\w*", r"\burin\w*",
            r"\bcatheter\w*",
            r"\b(?:wet|peed|pee|peeing|soiled|pooped|pooping|wetting|messed) "
            r"(?:myself|my pants|my self|the bed)\b",
            negatable=True),
    *_rules(BLADDER_BOWEL, "en",
            r"\b(?:cant|cannot|can not|unable to|not able to|trouble|difficulty|struggling to|hard to|couldnt"
            r"|could not) (?:\w+ )?(?:pee|wee|urinate|poo|poop|go to the toilet|go to the bathroom"
            r"|hold (?:it|my pee|my urine|my bladder|my bowels))\b",
            r"\b(?:lost|losing|loss of|lose|no) control\b",
            r"\b(?:had|have had|having) (?:an |a little |a )?accidents?\b"),
    *_rules(BLADDER_BOWEL, "es", r"\bvejiga\b", r"\bincontinencia\b", r"\borin\w*", r"\besfinter\w*",
            r"\bintestin\w*", r"\bme (?:orine|hice pipi|hice popo|hice encima)\b", negatable=True),
    *_rules(BLADDER_BOWEL, "es", r"\bno (?:puedo|pude|podia) (?:hacer pipi|mear|ir al bano|aguantar)\b"),
    *_rules(FEVER, "en", r"\b(?<!hay )(?<!cabin )fever\w*", r"\bchills\b", r"\b(?:night )?sweats\b",
            r"\bburning up\b|\bhot and cold\b|\bshiver\w*",
            r"\b(?:high|a|running a|got a|have a|had a) (?:temp|temperature)\b",
            rf"\btemp(?:erature)?\b(?: \w+){{0,3}}? {_TEMP}\b", negatable=True),
    *_rules(FEVER, "es", r"\bfiebre\b", r"\bcalentura\b", r"\bfebril\b", r"\bescalofrios?\b",
            r"\btengo temperatura\b", rf"\btemperatura\b(?: \w+){{0,3}}? {_TEMP}\b", negatable=True),
    *_rules(CANNOT_WALK, "en",
            r"\b(?:cant|cannot|can not|couldnt|could not|unable to|not able to|impossible to)\b"
            r"(?: \w+){0,2}? "
            rf"(?<!back )(?:walk|walking|{_STAND}|get up|get out of bed|move my legs?|put (?:any )?weight"
            r"|bear weight)\b",
            # Mere difficulty counts for walking and standing, not for getting up (stiff mornings are common).
            r"\b(?:hard to|barely|struggling to|struggle to|trouble|difficulty|hardly)\b(?: \w+){0,2}? "
            rf"(?<!back )(?:walk|walking|{_STAND})\b",
            r"(?<!back )\b(?:walking|standing) (?:is |has been |was )?(?:really |very |so )?"
            r"(?:hard|difficult|impossible)\b"),
    *_rules(CANNOT_WALK, "es",
            r"\bno (?:puedo|puede|pude|podia|consigo|logro) (?:\w+ )?(?:caminar|andar|pararme|estar de pie"
            r"|ponerme de pie|levantarme|mover las piernas|apoyar)\b",
            r"\b(?:me cuesta|dificultad para|casi no puedo) (?:caminar|andar|pararme|estar de pie)\b"),
)
_NEGATION = re.compile(
    r"(?:^| )(?:no|not|never|without|sin|nor|ni|isnt|arent|wasnt|werent|dont have|do not have|didnt have"
    r"|never had|havent had|havent got|hasnt had|no more|no longer|not any|not feeling|not having|not really"
    r"|no tengo|no hay|no siento|nada de|free of|zero)(?: (?:any|a|an|signs of|sign of|ningun|ninguna|de))?$"
)
_LIST_GAP = re.compile(r" ?(?:or|nor|ni|o)? ?(?:any )?")


def _red_flags(text: _Text, hits: list[str]) -> tuple[str, ...]:
    found: set[str] = set()
    for clause in text.clauses:
        matches = sorted(
            ((m.start(), m.end(), rule) for rule in RED_FLAG_RULES for m in rule.pattern.finditer(clause)),
            key=lambda t: (t[0], t[1]),
        )
        negated_end = None  # where the last negated flag ended, so "no A or B" negates B too
        for start, end, rule in matches:
            hits.append(rule.lang)
            if rule.negatable and _negated(clause, start, negated_end):
                negated_end = end
                continue
            found.add(rule.value)
    return tuple(flag for flag in RED_FLAGS if flag in found)


def _negated(clause: str, start: int, negated_end: int | None) -> bool:
    """A simple direct negation: "no"/"not"/"sin"... just before, or listed after a negated flag."""
    if _NEGATION.search(" ".join(clause[:start].split()[-4:])):
        return True
    return negated_end is not None and negated_end <= start and bool(
        _LIST_GAP.fullmatch(clause[negated_end:start].rstrip())
    )


# --------------------------------------------------------------------------------------------------
# Language

ES_WORDS = frozenset(
    "el la los las de del que y en es por con para mi mis muy pero mas estoy esta estan tengo tiene dolor "
    "espalda gracias hola si bien mal hoy ahora siento duele cita mejor peor igual mismo lo su yo usted "
    "pierna piernas buenos buenas dias tardes noches favor quiero puedo un una como ya nada poco mucho todo "
    "sigue alto baja parar cancelar ayuda alta empezar confirmo manana fiebre caminar orinar mensajes".split()
)
EN_WORDS = frozenset(
    "the and is my i it its im to of in feel feeling back pain today better worse same thanks thank you this "
    "that but still much so very have am was with not stop please yes help texting text messages leg legs "
    "walk can cant dont be there see hurts good great bad now than yesterday will ill sore more less what "
    "who how are do".split()
)


# A language is clear from two of its words, outweighing the other language two to one: one word
# ("STOP", "peor", "si") is used whatever the language, and a number is in none.
CLEAR_WORDS, CLEAR_RATIO = 2, 2


def _language(text: _Text, hits: list[str]) -> tuple[str, bool]:
    """Spanish when the rules that matched, or the words used, are mostly Spanish; and whether that
    is clear enough to answer in it rather than in the client's usual language."""
    words = text.flat.split()
    counts = {"es": sum(w in ES_WORDS for w in words), "en": sum(w in EN_WORDS for w in words)}
    score = {lang: n + 3 * hits.count(lang) for lang, n in counts.items()}
    language, other = ("es", "en") if score["es"] > score["en"] else ("en", "es")
    clear = counts[language] >= CLEAR_WORDS and score[language] >= CLEAR_RATIO * score[other]
    return language, clear


# --------------------------------------------------------------------------------------------------


def interpret(text: str, reminder_open: bool = False) -> Reply:
    """What a client's SMS reply means. Never raises; unreadable text is Intent.UNKNOWN.

    `reminder_open`: an appointment reminder awaits an answer, so a bare "yes" confirms it rather than
    re-subscribing. Every field is filled whatever the intent, so the caller can still escalate a red
    flag that came with an opt-out.
    """
    text = text if isinstance(text, str) else ""
    if (language := _reaction(text)) is not None:
        return Reply(Intent.REACTION, language=language)
    folded = _fold(text)
    flat, hits = folded.flat, []

    opt_out = bool(
        _fullmatch(OPT_OUT_KEYWORDS, flat, hits)
        or any(_fullmatch(OPT_OUT_SENTENCE, clause, hits) for clause in folded.clauses)
        or _search(OPT_OUT_PHRASES + OPT_OUT_PHRASES_ES, folded.joined, hits)
    )
    opt_in = not opt_out and bool(
        _fullmatch(OPT_IN_KEYWORDS, flat, hits) or (not reminder_open and _fullmatch(_YES, flat, hits))
    )
    red_flags = _red_flags(folded, hits)
    help_ = _fullmatch(HELP_KEYWORDS, flat, hits)
    appointment = _appointment_intent(folded, reminder_open, hits)
    answer, rest = _answer(folded, hits)
    pain, menu_answer = _pain(folded, rest)
    answer = _most_concerning({a for a in (answer, menu_answer) if a})
    if reminder_open and _thumbs_up_only(folded):
        answer = None  # a thumbs-up to a reminder says nothing about the back

    if opt_out:
        intent = Intent.OPT_OUT
    elif opt_in:
        intent = Intent.OPT_IN
    elif red_flags:
        intent = Intent.RED_FLAG
    elif help_:
        intent = Intent.HELP
    elif appointment:
        intent = appointment
    elif answer or pain is not None:
        intent = Intent.CHECKIN
    else:
        intent = Intent.UNKNOWN
    return Reply(intent, answer, pain, red_flags, *_language(folded, hits))


def _appointment_intent(text: _Text, reminder_open: bool, hits: list[str]) -> Intent | None:
    """CONFIRM or RESCHEDULE; a message saying both ("yes but can we move it") asks to reschedule."""
    flat = text.flat
    if _fullmatch(RESCHEDULE_KEYWORDS, flat, hits) or _search(RESCHEDULE_PHRASES, text.joined, hits):
        return Intent.RESCHEDULE
    if (
        _fullmatch(CONFIRM_KEYWORDS, flat, hits)
        or (reminder_open and _fullmatch(YES_WHILE_REMINDER, flat, hits))
        or (reminder_open and _thumbs_up_only(text))
        or _search(CONFIRM_PHRASES, text.joined, hits)
    ):
        return Intent.CONFIRM
    return None

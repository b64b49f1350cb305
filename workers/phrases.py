"""Short fixed replies (apologies, notices) in the user's language, without spending an LLM call on them."""

from __future__ import annotations

import re

PHRASES: dict[str, dict[str, str]] = {
    "apology": {
        "en": "Sorry, something went wrong on my side and I couldn't answer that. Please try again in a moment.",
        "es": "Lo siento, algo falló de mi lado y no pude responder. Inténtalo de nuevo en un momento.",
        "pt": "Desculpe, algo deu errado do meu lado e não consegui responder. Tente novamente em instantes.",
        "fr": "Désolé, un problème de mon côté m'a empêché de répondre. Réessayez dans un instant.",
        "de": "Entschuldigung, bei mir ist etwas schiefgelaufen. Bitte versuche es gleich noch einmal.",
        "it": "Scusa, qualcosa è andato storto e non sono riuscito a rispondere. Riprova tra poco.",
        "ar": "عذرًا، حدث خطأ من جهتي ولم أتمكن من الرد. حاول مرة أخرى بعد قليل.",
    },
    "not_yet": {
        "en": "Thanks! I can't handle this kind of message yet. Please send it as text.",
        "es": "¡Gracias! Todavía no puedo procesar este tipo de mensaje. Por favor, envíalo como texto.",
        "pt": "Obrigado! Ainda não consigo processar este tipo de mensagem. Envie como texto, por favor.",
        "fr": "Merci ! Je ne sais pas encore traiter ce type de message. Envoyez-le en texte, s'il vous plaît.",
        "de": "Danke! Diese Art von Nachricht kann ich noch nicht verarbeiten. Bitte schick sie als Text.",
        "it": "Grazie! Non posso ancora gestire questo tipo di messaggio. Invialo come testo, per favore.",
        "ar": "شكرًا! لا أستطيع التعامل مع هذا النوع من الرسائل بعد. أرسلها نصًا من فضلك.",
    },
    "voice_too_large": {
        "en": "Sorry, that voice message is too large for me. Please send a shorter one (up to {limit}).",
        "es": "Lo siento, ese mensaje de voz es demasiado grande para mí. Envía uno más corto (hasta {limit}).",
        "pt": "Desculpe, essa mensagem de voz é grande demais para mim. Envie uma mais curta (até {limit}).",
        "fr": "Désolé, ce message vocal est trop volumineux pour moi. Envoyez-en un plus court (jusqu'à {limit}).",
        "de": "Entschuldigung, diese Sprachnachricht ist mir zu groß. Bitte schick eine kürzere (bis {limit}).",
        "it": "Scusa, questo messaggio vocale è troppo grande per me. Inviane uno più breve (fino a {limit}).",
        "ar": "عذرًا، هذه الرسالة الصوتية كبيرة جدًا بالنسبة لي. أرسل رسالة أقصر (حتى {limit}).",
    },
    "voice_too_long": {
        "en": "Sorry, that voice message is too long for me. Please keep it under {limit}, or type your question.",
        "es": "Lo siento, ese mensaje de voz es demasiado largo. Que dure menos de {limit}, o escribe tu pregunta.",
        "pt": "Desculpe, essa mensagem de voz é longa demais. Mantenha abaixo de {limit} ou digite sua pergunta.",
        "fr": "Désolé, ce message vocal est trop long. Restez sous {limit}, ou écrivez votre question.",
        "de": "Entschuldigung, diese Sprachnachricht ist zu lang. Bitte unter {limit} bleiben oder die Frage tippen.",
        "it": "Scusa, questo messaggio vocale è troppo lungo. Resta sotto {limit}, oppure scrivi la domanda.",
        "ar": "عذرًا، هذه الرسالة الصوتية طويلة جدًا. اجعلها أقل من {limit} أو اكتب سؤالك.",
    },
    "voice_not_understood": {
        "en": "Sorry, I couldn't understand that voice message. Could you say it again or type it?",
        "es": "Lo siento, no pude entender ese mensaje de voz. ¿Puedes repetirlo o escribirlo?",
        "pt": "Desculpe, não consegui entender essa mensagem de voz. Pode repetir ou digitar?",
        "fr": "Désolé, je n'ai pas compris ce message vocal. Pouvez-vous le répéter ou l'écrire ?",
        "de": "Entschuldigung, ich habe die Sprachnachricht nicht verstanden. Kannst du sie wiederholen oder tippen?",
        "it": "Scusa, non ho capito questo messaggio vocale. Puoi ripeterlo o scriverlo?",
        "ar": "عذرًا، لم أفهم هذه الرسالة الصوتية. هل يمكنك إعادتها أو كتابتها؟",
    },
}

# Tiny stop-word vote: enough to pick the language of a canned sentence, not a general detector.
_MARKERS: dict[str, frozenset[str]] = {
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "que",
            "de",
            "y",
            "por",
            "para",
            "una",
            "un",
            "es",
            "estoy",
            "hola",
            "gracias",
            "qué",
            "cómo",
            "puedes",
            "me",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "que",
            "de",
            "e",
            "para",
            "uma",
            "um",
            "é",
            "estou",
            "olá",
            "obrigado",
            "você",
            "não",
            "como",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "que",
            "de",
            "et",
            "pour",
            "une",
            "un",
            "est",
            "je",
            "bonjour",
            "merci",
            "vous",
            "pas",
            "comment",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "ich",
            "nicht",
            "ein",
            "eine",
            "hallo",
            "danke",
            "du",
            "wie",
            "was",
            "bitte",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "lo",
            "la",
            "che",
            "di",
            "e",
            "per",
            "una",
            "un",
            "è",
            "sono",
            "ciao",
            "grazie",
            "come",
            "non",
            "puoi",
        ]
    ),
    "en": frozenset(
        [
            "the",
            "a",
            "an",
            "and",
            "is",
            "are",
            "i",
            "you",
            "what",
            "how",
            "can",
            "please",
            "hello",
            "thanks",
            "to",
            "of",
        ]
    ),
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def guess_language(text: str, default: str = "en") -> str:
    if re.search(r"[\u0600-\u06FF]", text):
        return "ar"
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: sum(w in markers for w in words) for lang, markers in _MARKERS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else default


def phrase(key: str, language: str) -> str:
    table = PHRASES[key]
    return table.get(language) or table["en"]

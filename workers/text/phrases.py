"""Short fixed replies (apologies, notices) in the user's language, without spending an LLM call on them."""

from __future__ import annotations

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
    # --- vision and the other message types (see the README's "Message types" table) ---
    # Sent to the vision model (not to the user) when an image has no caption.
    "image_no_caption": {
        "en": "I'm sending you this image without a caption. Describe briefly what you see, then ask me what I "
        "would like to know about it. Answer in English.",
        "es": "Te envío esta imagen sin texto. Describe brevemente lo que ves y luego pregúntame qué quiero saber "
        "de ella. Responde en español.",
        "pt": "Estou enviando esta imagem sem legenda. Descreva brevemente o que você vê e depois pergunte o que "
        "eu gostaria de saber sobre ela. Responda em português.",
        "fr": "Je t'envoie cette image sans légende. Décris brièvement ce que tu vois, puis demande-moi ce que je "
        "veux savoir à son sujet. Réponds en français.",
        "de": "Ich schicke dir dieses Bild ohne Text. Beschreibe kurz, was du siehst, und frag mich dann, was ich "
        "darüber wissen möchte. Antworte auf Deutsch.",
        "it": "Ti mando questa immagine senza didascalia. Descrivi brevemente cosa vedi, poi chiedimi cosa vorrei "
        "sapere. Rispondi in italiano.",
        "ar": "أرسل لك هذه الصورة بدون تعليق. صف باختصار ما تراه، ثم اسألني ماذا أريد أن أعرف عنها. أجب بالعربية.",
    },
    "image_too_large": {
        "en": "Sorry, that image is too large for me. Could you send a smaller photo or a screenshot?",
        "es": "Lo siento, esa imagen es demasiado grande para mí. ¿Puedes enviar una foto más pequeña o una captura?",
        "pt": "Desculpe, essa imagem é grande demais para mim. Pode enviar uma foto menor ou uma captura de tela?",
        "fr": "Désolé, cette image est trop grande pour moi. Pouvez-vous envoyer une photo plus petite ?",
        "de": "Entschuldigung, das Bild ist zu groß für mich. Kannst du ein kleineres Foto schicken?",
        "it": "Scusa, l'immagine è troppo grande per me. Puoi inviare una foto più piccola?",
        "ar": "عذرًا، هذه الصورة كبيرة جدًا. هل يمكنك إرسال صورة أصغر؟",
    },
    "image_unreadable": {
        "en": "Sorry, I couldn't open that image. Could you send it again as a photo (JPEG or PNG)?",
        "es": "Lo siento, no pude abrir esa imagen. ¿Puedes enviarla de nuevo como foto (JPEG o PNG)?",
        "pt": "Desculpe, não consegui abrir essa imagem. Pode enviá-la de novo como foto (JPEG ou PNG)?",
        "fr": "Désolé, je n'ai pas pu ouvrir cette image. Pouvez-vous la renvoyer en photo (JPEG ou PNG) ?",
        "de": "Entschuldigung, ich konnte das Bild nicht öffnen. Kannst du es noch einmal als Foto (JPEG oder PNG) "
        "schicken?",
        "it": "Scusa, non sono riuscito ad aprire l'immagine. Puoi rimandarla come foto (JPEG o PNG)?",
        "ar": "عذرًا، لم أتمكن من فتح هذه الصورة. هل يمكنك إرسالها مرة أخرى كصورة (JPEG أو PNG)؟",
    },
    "voice_unreadable": {
        "en": "Sorry, I couldn't open that voice note. Could you record it again?",
        "es": "Lo siento, no pude abrir esa nota de voz. ¿Puedes grabarla de nuevo?",
        "pt": "Desculpe, não consegui abrir essa mensagem de voz. Pode gravá-la de novo?",
        "fr": "Désolé, je n'ai pas pu ouvrir ce message vocal. Pouvez-vous l'enregistrer à nouveau ?",
        "de": "Entschuldigung, ich konnte die Sprachnachricht nicht öffnen. Kannst du sie noch einmal aufnehmen?",
        "it": "Scusa, non sono riuscito ad aprire il messaggio vocale. Puoi registrarlo di nuovo?",
        "ar": "عذرًا، لم أتمكن من فتح هذه الرسالة الصوتية. هل يمكنك تسجيلها مرة أخرى؟",
    },
    "media_not_supported": {
        "en": "Thanks! I can't open videos or documents yet. I can read text messages, listen to voice notes and "
        "look at photos, so feel free to send one of those.",
        "es": "¡Gracias! Todavía no puedo abrir videos ni documentos. Puedo leer mensajes de texto, escuchar notas de "
        "voz y ver fotos: envíame uno de esos.",
        "pt": "Obrigado! Ainda não consigo abrir vídeos nem documentos. Consigo ler mensagens de texto, ouvir "
        "mensagens de voz e ver fotos: envie um desses.",
        "fr": "Merci ! Je ne peux pas encore ouvrir les vidéos ni les documents. Je lis les messages texte, j'écoute "
        "les messages vocaux et je regarde les photos : envoyez-moi l'un de ceux-là.",
        "de": "Danke! Videos und Dokumente kann ich noch nicht öffnen. Ich lese Textnachrichten, höre "
        "Sprachnachrichten und sehe mir Fotos an: schick mir gern eines davon.",
        "it": "Grazie! Non posso ancora aprire video o documenti. Leggo messaggi di testo, ascolto messaggi vocali "
        "e guardo foto: mandami uno di questi.",
        "ar": "شكرًا! لا أستطيع فتح الفيديوهات أو المستندات بعد. أستطيع قراءة الرسائل النصية والاستماع إلى "
        "الرسائل الصوتية ورؤية الصور.",
    },
    "message_not_supported": {
        "en": "Sorry, I can't see this kind of message here. Could you send it as text, a voice note or a photo?",
        "es": "Lo siento, no puedo ver este tipo de mensaje. ¿Puedes enviarlo como texto, nota de voz o foto?",
        "pt": "Desculpe, não consigo ver este tipo de mensagem. Pode enviar como texto, mensagem de voz ou foto?",
        "fr": "Désolé, je ne peux pas voir ce type de message. Pouvez-vous l'envoyer en texte, en vocal ou en photo ?",
        "de": "Entschuldigung, diese Art von Nachricht kann ich nicht sehen. Kannst du sie als Text, "
        "Sprachnachricht oder Foto schicken?",
        "it": "Scusa, non riesco a vedere questo tipo di messaggio. Puoi inviarlo come testo, vocale o foto?",
        "ar": "عذرًا، لا أستطيع رؤية هذا النوع من الرسائل. هل يمكنك إرساله كنص أو رسالة صوتية أو صورة؟",
    },
    # {names} and {count} are filled in by the caller.
    "contacts_received": {
        "en": "Thanks, I got {count} contact(s): {names}. I don't save contacts, but tell me if I can help with them.",
        "es": "Gracias, recibí {count} contacto(s): {names}. No guardo contactos, pero dime si puedo ayudarte con "
        "ellos.",
        "pt": "Obrigado, recebi {count} contato(s): {names}. Não salvo contatos, mas diga se posso ajudar com eles.",
        "fr": "Merci, j'ai reçu {count} contact(s) : {names}. Je n'enregistre pas les contacts, mais dites-moi si je "
        "peux vous aider.",
        "de": "Danke, ich habe {count} Kontakt(e) bekommen: {names}. Ich speichere keine Kontakte, aber sag mir, ob "
        "ich helfen kann.",
        "it": "Grazie, ho ricevuto {count} contatto/i: {names}. Non salvo i contatti, ma dimmi se posso aiutarti.",
        "ar": "شكرًا، وصلتني {count} جهة اتصال: {names}. لا أحفظ جهات الاتصال، لكن أخبرني إن كان بإمكاني المساعدة.",
    },
    # {items} is filled in by the caller.
    "order_received": {
        "en": "Thanks for your order ({items})! I'm an assistant and can't process orders in this chat, though.",
        "es": "¡Gracias por tu pedido ({items})! Pero soy un asistente y no puedo procesar pedidos en este chat.",
        "pt": "Obrigado pelo pedido ({items})! Mas sou um assistente e não consigo processar pedidos neste chat.",
        "fr": "Merci pour votre commande ({items}) ! Je suis un assistant et ne peux pas traiter de commandes ici.",
        "de": "Danke für deine Bestellung ({items})! Ich bin aber ein Assistent und kann hier keine Bestellungen "
        "bearbeiten.",
        "it": "Grazie per l'ordine ({items})! Sono un assistente e non posso gestire ordini in questa chat.",
        "ar": "شكرًا على طلبك ({items})! لكنني مساعد ولا أستطيع معالجة الطلبات في هذه المحادثة.",
    },
    "form_received": {
        "en": "Thanks, I received your answers.",
        "es": "Gracias, recibí tus respuestas.",
        "pt": "Obrigado, recebi suas respostas.",
        "fr": "Merci, j'ai bien reçu vos réponses.",
        "de": "Danke, ich habe deine Antworten erhalten.",
        "it": "Grazie, ho ricevuto le tue risposte.",
        "ar": "شكرًا، وصلتني إجاباتك.",
    },
    "stale_notice": {
        "en": "Sorry for the late reply: your message only reached me now. If you still need help, please send it "
        "again.",
        "es": "Perdón por la demora: tu mensaje me llegó recién ahora. Si todavía necesitas ayuda, envíalo de nuevo.",
        "pt": "Desculpe a demora: sua mensagem só chegou agora. Se ainda precisar de ajuda, envie de novo.",
        "fr": "Désolé pour le retard : votre message vient seulement de m'arriver. Si vous avez encore besoin d'aide, "
        "renvoyez-le.",
        "de": "Entschuldige die späte Antwort: Deine Nachricht ist erst jetzt bei mir angekommen. Wenn du noch Hilfe "
        "brauchst, schick sie bitte noch einmal.",
        "it": "Scusa il ritardo: il tuo messaggio mi è arrivato solo ora. Se hai ancora bisogno, rimandalo.",
        "ar": "عذرًا على التأخير: وصلتني رسالتك الآن فقط. إن كنت لا تزال بحاجة إلى مساعدة، أرسلها مرة أخرى.",
    },
    # Before an answer the user did not get when it was written (the window had closed, or Meta could not deliver
    # it), sent when they write again. {question}: the start of the message it answers.
    "kept_answer": {
        "en": "Earlier you asked “{question}”. Here is the answer I could not deliver then:",
        "es": "Antes preguntaste «{question}». Esta es la respuesta que no pude entregarte entonces:",
        "pt": "Antes você perguntou “{question}”. Esta é a resposta que não consegui entregar naquele momento:",
        "fr": "Vous m'aviez demandé « {question} ». Voici la réponse que je n'avais pas pu vous transmettre :",
        "de": "Du hattest gefragt: „{question}“. Hier ist die Antwort, die ich dir damals nicht zustellen konnte:",
        "it": "Prima mi avevi chiesto «{question}». Ecco la risposta che non ero riuscito a consegnarti:",
        "ar": "سألتني سابقًا: «{question}». إليك الإجابة التي لم أتمكن من إيصالها حينها:",
    },
    "kept_answer_no_question": {
        "en": "Here is an answer I could not deliver earlier:",
        "es": "Esta es una respuesta que no pude entregarte antes:",
        "pt": "Esta é uma resposta que não consegui entregar antes:",
        "fr": "Voici une réponse que je n'avais pas pu vous transmettre :",
        "de": "Hier ist eine Antwort, die ich dir vorhin nicht zustellen konnte:",
        "it": "Ecco una risposta che non ero riuscito a consegnarti prima:",
        "ar": "إليك إجابة لم أتمكن من إيصالها سابقًا:",
    },
    # {seconds}: the per-user window (USER_RATE_WINDOW_SECONDS).
    "slow_down": {
        "en": "You're sending messages faster than I can answer. I've read them all; please wait a moment "
        "(about {seconds} s) before the next one and I'll reply.",
        "es": "Me estás enviando mensajes más rápido de lo que puedo responder. Los leí todos; espera un momento "
        "(unos {seconds} s) antes del siguiente y te respondo.",
        "pt": "Você está enviando mensagens mais rápido do que consigo responder. Li todas; espere um momento "
        "(uns {seconds} s) antes da próxima e eu respondo.",
        "fr": "Vous m'envoyez des messages plus vite que je ne peux répondre. Je les ai tous lus ; attendez un "
        "instant (environ {seconds} s) avant le suivant et je vous répondrai.",
        "de": "Du schickst Nachrichten schneller, als ich antworten kann. Ich habe alle gelesen; warte bitte kurz "
        "(etwa {seconds} s) vor der nächsten, dann antworte ich.",
        "it": "Mi stai mandando messaggi più velocemente di quanto riesca a rispondere. Li ho letti tutti; aspetta "
        "un momento (circa {seconds} s) prima del prossimo e ti rispondo.",
        "ar": "أنت ترسل الرسائل أسرع مما أستطيع الرد. قرأتها كلها؛ انتظر قليلًا (حوالي {seconds} ثانية) قبل "
        "الرسالة التالية وسأرد عليك.",
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
    # --- the user's commands (docs/commands.md) ---
    "command_reset": {
        "en": "Done: I have forgotten our conversation. We can start fresh.",
        "es": "Listo: he olvidado nuestra conversación. Podemos empezar de nuevo.",
        "pt": "Pronto: esqueci nossa conversa. Podemos começar do zero.",
        "fr": "C'est fait : j'ai oublié notre conversation. Nous pouvons repartir de zéro.",
        "de": "Erledigt: Ich habe unser Gespräch vergessen. Wir können neu anfangen.",
        "it": "Fatto: ho dimenticato la nostra conversazione. Possiamo ricominciare.",
        "ar": "تم: نسيت محادثتنا. يمكننا البدء من جديد.",
    },
    "command_stop": {
        "en": "OK, I will not reply any more. Send START to turn replies back on.",
        "es": "De acuerdo, no responderé más. Envía EMPEZAR para volver a activar las respuestas.",
        "pt": "Certo, não vou mais responder. Envie COMEÇAR para reativar as respostas.",
        "fr": "D'accord, je ne répondrai plus. Envoyez REPRENDRE pour réactiver les réponses.",
        "de": "Okay, ich antworte nicht mehr. Schick FORTSETZEN, um Antworten wieder einzuschalten.",
        "it": "Va bene, non risponderò più. Invia RIPRENDI per riattivare le risposte.",
        "ar": "حسنًا، لن أرد بعد الآن. أرسل ابدأ لإعادة تشغيل الردود.",
    },
    "command_start": {
        "en": "Welcome back: replies are on again.",
        "es": "Bienvenido de nuevo: las respuestas están activadas otra vez.",
        "pt": "Bem-vindo de volta: as respostas estão ativadas novamente.",
        "fr": "Bon retour : les réponses sont réactivées.",
        "de": "Willkommen zurück: Antworten sind wieder eingeschaltet.",
        "it": "Bentornato: le risposte sono di nuovo attive.",
        "ar": "مرحبًا بعودتك: تم تشغيل الردود مرة أخرى.",
    },
    # The caption of the export document.
    "command_export": {
        "en": "Here is everything I have stored about you.",
        "es": "Aquí está todo lo que tengo guardado sobre ti.",
        "pt": "Aqui está tudo o que tenho guardado sobre você.",
        "fr": "Voici tout ce que j'ai enregistré à votre sujet.",
        "de": "Hier ist alles, was ich über dich gespeichert habe.",
        "it": "Ecco tutto ciò che ho memorizzato su di te.",
        "ar": "إليك كل ما خزّنته عنك.",
    },
    "command_delete": {
        "en": "Done: everything I had stored about you has been deleted.",
        "es": "Listo: se ha borrado todo lo que tenía guardado sobre ti.",
        "pt": "Pronto: tudo o que eu tinha guardado sobre você foi apagado.",
        "fr": "C'est fait : tout ce que j'avais enregistré à votre sujet a été supprimé.",
        "de": "Erledigt: Alles, was ich über dich gespeichert hatte, wurde gelöscht.",
        "it": "Fatto: tutto ciò che avevo memorizzato su di te è stato cancellato.",
        "ar": "تم: حُذف كل ما كنت قد خزّنته عنك.",
    },
    "command_handoff": {
        "en": "Thanks, a person from our team will follow up here soon.",
        "es": "Gracias, una persona de nuestro equipo te responderá aquí pronto.",
        "pt": "Obrigado, uma pessoa da nossa equipe vai responder aqui em breve.",
        "fr": "Merci, une personne de notre équipe vous répondra ici bientôt.",
        "de": "Danke, eine Person aus unserem Team meldet sich hier bald.",
        "it": "Grazie, una persona del nostro team ti risponderà qui a breve.",
        "ar": "شكرًا، سيتابع معك شخص من فريقنا هنا قريبًا.",
    },
}


def phrase(key: str, language: str) -> str:
    table = PHRASES[key]
    return table.get(language) or table["en"]

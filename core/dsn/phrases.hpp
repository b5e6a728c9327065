// The words pli::dsn looks for in non-standard bounces (English and French), kept
// apart from the classifier so that the lists can be read and extended on their own.
// Every phrase is matched against text normalised by normalize_for_match(): lower-case
// ASCII, accents removed, typographic apostrophes as ', whitespace runs as one space.
#pragma once

#include <array>

namespace pli::dsn::detail::phrases {

// Bounce wording: says by itself that this is a delivery failure notice.
inline constexpr std::array k_bounce_phrases = {
    "undeliverable", "undelivered mail", "undelivered message", "could not be delivered",
    "couldn't be delivered", "cannot be delivered", "can't be delivered", "could not deliver",
    "couldn't deliver", "was not delivered", "wasn't delivered", "has not been delivered to",
    "not be delivered", "delivery failed", "delivery has failed", "delivery failure",
    "delivery to the following recipient", "failed permanently", "permanent error",
    "permanent failure", "permanent fatal error", "fatal error", "returned mail",
    "returned to sender", "failure notice", "mail delivery failed",
    "delivery status notification (failure)", "did not reach", "unable to deliver",
    "wasn't able to deliver", "was unable to deliver", "were unable to deliver",
    "not able to deliver", "message not delivered", "mail system error", "non-delivery",
    "nondeliverable", "rejected your message", "message was rejected", "has been rejected",
    "been blocked", "message rejected", "delivery not successful",
    // French
    "n'a pas pu etre remis", "n'a pas pu etre delivre", "n'a pas pu etre distribue",
    "n'a pu etre remis", "n'a pu etre delivre", "non remis", "non delivre", "non distribue",
    "non distribuable", "echec de la remise", "echec de remise", "echec de livraison",
    "echec de la livraison", "echec de distribution", "impossible de remettre",
    "impossible de delivrer", "impossible de distribuer", "remise impossible", "erreur permanente",
    "message rejete", "a ete rejete"};

// Reasons: say why, but also occur in ordinary mail; count only with another sign.
inline constexpr std::array k_reason_phrases = {
    "user unknown", "unknown user", "no such user", "no such recipient", "no such mailbox",
    "does not exist", "doesn't exist", "not exist", "mailbox full", "mailbox is full", "over quota",
    "quota exceeded", "exceeded storage", "mailbox unavailable", "recipient rejected",
    "address rejected", "invalid recipient", "unknown recipient", "recipient unknown",
    "recipient address rejected", "is not recognized", "host unknown", "unknown host",
    "domain not found", "unrouteable address", "relay access denied", "relaying denied",
    "account disabled", "account has been disabled", "mailbox disabled", "message expired",
    "has expired", "in the queue too long", "too many hops", "spam", "blocked", "message too large",
    "message size exceeds", "aborted", "could not find", "couldn't find",
    // French
    "utilisateur inconnu", "destinataire inconnu", "adresse introuvable", "adresse inconnue",
    "adresse invalide", "n'existe pas", "compte inexistant", "boite pleine",
    "boite aux lettres pleine", "boite de reception pleine", "quota depasse", "domaine introuvable",
    "domaine inconnu", "desactive"};

// Delay wording: the MTA still tries.
inline constexpr std::array k_delay_phrases = {
    "delivery has been delayed", "has been delayed", "delayed mail", "delivery delayed",
    "message delayed", "delivery status notification (delay)", "temporarily deferred", "deferred",
    "will retry", "will be retried", "will continue to try", "will keep trying", "will try again",
    "will try to deliver", "still trying", "still being retried", "still retrying", "retrying",
    "not yet been delivered", "has not been delivered yet", "could not send message for past",
    "delivery attempts will continue", "delay", "will continue to be attempted",
    "hasn't been delivered yet", "has not yet been delivered", "warning message only",
    "this is a warning", "do not need to resend", "temporary failure", "temporary problem",
    "temporarily unable",
    // French
    "remise differee", "remise retardee", "a ete differe", "retarde", "sera retente",
    "nouvelle tentative", "nouvel essai", "pas encore ete remis", "pas encore ete delivre",
    "n'a pas encore pu etre", "essaiera", "reessaiera"};

// The MTA has given up: overrides the delay wording.
inline constexpr std::array k_final_phrases = {"will not retry",
                                               "won't retry",
                                               "will not be retried",
                                               "not going to try again",
                                               "no further attempts",
                                               "given up",
                                               "giving up",
                                               "gave up",
                                               "permanent",
                                               "too long",
                                               "expired",
                                               "has been returned",
                                               "aborted",
                                               "definitivement",
                                               "abandon"};

// Where the returned original starts in a single-part notice.
inline constexpr std::array k_cut_markers = {"below this line is a copy of the message",
                                             "this is a copy of the message",
                                             "original message follows",
                                             "unsent message follows",
                                             "----- original message",
                                             "-----original message",
                                             "original message headers",
                                             "unsent message below",
                                             "returned message follows",
                                             "message header follows",
                                             "headers of the original message",
                                             "header of the original message",
                                             "message d'origine",
                                             "----- message original",
                                             "-----message original"};

inline constexpr std::array k_auto_reply_subjects = {
    "auto:",         "automatic reply",     "auto reply",
    "auto-reply",    "autoreply",           "auto response",
    "auto-response", "autoresponse",        "automatische antwort",
    "out of office", "out of the office",   "away until",
    "vacation",      "reponse automatique", "reponse auto",
    "absence",       "absent du",           "abwesend",
    "abwesenheit"};

// Subjects that say the delivery failed / is only delayed.
inline constexpr std::array k_fail_subjects = {"undeliver",
                                               "returned mail",
                                               "failure",
                                               "failed",
                                               "not delivered",
                                               "non remis",
                                               "non delivre",
                                               "non distribu",
                                               "echec",
                                               "rejected",
                                               "returned to sender",
                                               "nondeliverable",
                                               "mail system error",
                                               "could not be delivered",
                                               "mail failure"};
inline constexpr std::array k_delay_subjects = {"delayed",
                                                "(delay)",
                                                "delay)",
                                                "warning",
                                                "could not send message for past",
                                                "could not send mail for past",
                                                "still being retried",
                                                "not yet delivered",
                                                "remise differee",
                                                "retard",
                                                "avertissement"};

inline constexpr std::array k_bounce_subjects = {"undeliver",
                                                 "undelivered",
                                                 "delivery status notification",
                                                 "returned mail",
                                                 "failure notice",
                                                 "delivery failure",
                                                 "delivery failed",
                                                 "mail delivery",
                                                 "not delivered",
                                                 "delayed mail",
                                                 "delivery delayed",
                                                 "delivery notification",
                                                 "mail system error",
                                                 "could not send message",
                                                 "warning: message",
                                                 "non remis",
                                                 "non delivre",
                                                 "non distribu",
                                                 "echec de",
                                                 "remise differee",
                                                 "rejected",
                                                 "returned to sender",
                                                 "nondeliverable",
                                                 "delivery report",
                                                 "undeliverable"};

} // namespace pli::dsn::detail::phrases

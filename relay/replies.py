"""Every SMTP reply the relay gives, named once, with its RFC 3463 enhanced status code.

The intake code and the tests use these same names. No reply ever carries a real address,
a letter's content or a traceback.
"""

from __future__ import annotations

OK = "250 2.0.0 OK"
QUEUED = "250 2.6.0 Letter received; it will be delivered once a librarian approves it"
SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"

TRY_AGAIN = "451 4.3.0 Temporary problem at the relay; please try again later"
SHUTTING_DOWN = "421 4.3.2 The relay is restarting; please try again in a few minutes"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients for one letter"
BACKLOG_FULL = "452 4.3.1 Too many letters waiting; please try again later"

# One answer for every refusal a sender could use to learn who is enrolled: no such pal, a
# sender who is not enrolled, a writer not paired with this pal, an unknown, used or expired
# moderation token, a badly signed unsubscribe address. The log and audit keep the reason.
UNKNOWN_ADDRESS = (
    "550 5.1.1 This address does not take mail from you; pen pals, please ask your library"
)
PARTICIPANT_PAUSED = (
    "550 5.7.1 Your pen pal is not receiving letters at the moment;"
    " your library will tell you when you can write again"
)
SENDER_PAUSED = "550 5.7.1 Your letters are paused; ask your library"
RELAY_DENIED = "554 5.7.1 This relay only accepts mail for its own pen-pal addresses"
BAD_SENDER_SYNTAX = "553 5.1.7 The sender address is not valid"
BAD_RECIPIENT_SYNTAX = "553 5.1.3 The recipient address is not valid"
TOO_BIG = "552 5.3.4 The letter is too large for the relay"
LINE_TOO_LONG = "500 5.5.2 Line too long"
MALFORMED_ADDRESS = "553 5.1.3 That is not a valid email address"
SYNTAX_ERROR = "500 5.5.2 Syntax error"
NEED_MAIL = "503 5.5.1 Send MAIL FROM first"
NEED_RCPT = "503 5.5.1 Send RCPT TO first"
NESTED_MAIL = "503 5.5.1 A transaction is already open; send RSET first"
SENDER_UNVERIFIED = "550 5.7.26 The sender's address could not be verified"
# A DNS failure while checking SPF, DKIM or DMARC: the sender's server tries again later.
SENDER_UNVERIFIED_TRY_LATER = (
    "451 4.7.26 The sender's address could not be verified now; please try again later"
)
NOT_STAFF = "550 5.7.1 Only listed library staff may write to this address"
RATE_LIMITED = "450 4.7.1 Too many refused recipients from your address; please try again later"
TOO_MANY_REFUSALS = "421 4.7.0 Too many refused recipients; closing the connection"
# XFORWARD (the front server passing on its client's address): only front servers may send it.
XFORWARD_OK = "250 2.0.0 Ok"
XFORWARD_SYNTAX = "501 5.5.4 Bad XFORWARD syntax"
XFORWARD_IN_TRANSACTION = "503 5.5.1 XFORWARD is not allowed inside a transaction"
NOT_RECOGNIZED = '500 Error: command "XFORWARD" not recognized'  # aiosmtpd's own words

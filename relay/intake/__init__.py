"""Intake: where mail enters the relay (SMTP now; IMAP from a hosted mailbox later)."""

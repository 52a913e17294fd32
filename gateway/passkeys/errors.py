"""The refusals of passkeys: logins, restricted sessions, step-ups, registration.

Here rather than in the service so the identity, exchange and workflow services raise them
without importing the passkey service.
"""

from __future__ import annotations

from keys.codes import Code, CodedError


class InvalidPasskey(CodedError):
    """A WebAuthn response was refused; ``reason`` names the check that failed."""

    code = Code.INVALID_PASSKEY

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, extra={"reason": reason})
        self.reason = reason


class PasskeyRequired(CodedError):
    """A console login that must present a passkey did not (401)."""

    code = Code.PASSKEY_REQUIRED
    default_detail = "this console login needs a passkey assertion (the passkey field)"


class StepUpRequired(PasskeyRequired):
    """A signed act (签发, 签收, 用印, a second passkey) that needs a passkey step-up came
    without one. Forbidden rather than unauthenticated: the session itself is fine."""

    default_detail = "this act needs a passkey step-up (the passkey field)"

    @property
    def status(self) -> int:
        return 403


class SetupRequired(CodedError):
    """The session may only register a passkey (and read itself) until it logs in again."""

    code = Code.PASSKEY_SETUP_REQUIRED
    default_detail = "register a passkey, then log in again with it"


class ConsoleKeyRequired(CodedError):
    """Passkeys belong to console (browser) keys; a key file session cannot register one."""

    code = Code.CONSOLE_KEY_REQUIRED
    default_detail = "passkeys are registered from a console (browser) key's session"


class PasskeyExists(CodedError):
    code = Code.ALREADY_EXISTS
    default_detail = "this credential is already registered"

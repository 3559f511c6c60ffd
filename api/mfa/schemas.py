from pydantic import BaseModel, Field

from api.types import RequestModel


class TotpEnrollment(BaseModel):
    """Shown once, while the enrolment is pending: never answered again after confirmation."""

    secret: str = Field(description="The shared secret, base32 (RFC 4648), for authenticator apps without a camera")
    otpauth_uri: str = Field(description="otpauth://totp/… URI (the QR code's content): SHA1, 6 digits, 30 s")


class OtpCode(RequestModel):
    code: str = Field(min_length=1, max_length=32,
                      description="The authenticator's current code (6 digits), or for DELETE an unused recovery code")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Ten single-use codes that stand in for the authenticator; shown "
                                                  "once, stored hashed")

"""Signed click tokens: each recommended link carries ``?rec=<token>`` saying which impression
(the block shown), placement, model version, position, rung and product it came from, bound to
the visitor it was made for, so a token can be neither forged nor replayed by another visitor
nor moved to another product's link."""

from __future__ import annotations

import uuid
from typing import Any

from django.core import signing

from recommender.serving.blocks import Candidate, Visitor

SIGNING_SALT = "recommender.click"
MAX_AGE = 30 * 86400

_signers: dict[str, Any] = {}


def _signer() -> signing.TimestampSigner:
    """One signer per secret key (made again when the key changes)."""
    from django.conf import settings

    secret = settings.SECRET_KEY
    if _signers.get("key") != secret:
        _signers.clear()
        _signers.update(key=secret, signer=signing.TimestampSigner(salt=SIGNING_SALT))
    return _signers["signer"]


class ClickTokens:
    """Makes and reads the tokens of recommendation links."""

    max_age = MAX_AGE

    def sign(
        self, placement: str, candidate: Candidate, position: int, visitor: Visitor, impression_id: uuid.UUID
    ) -> str:
        data = {
            "m": impression_id.hex,
            "p": placement,
            "v": candidate.version_id,
            "i": position,
            "r": candidate.rung,
            "o": candidate.product_id,
            "w": visitor.digest,
        }
        return _signer().sign_object(data)

    def read(self, token: str, visitor: Visitor, max_age: int | None = None) -> dict[str, Any] | None:
        """The attribution data of a link (``m`` impression id, ``p`` placement, ``v`` version id,
        ``i`` position, ``r`` rung, ``o`` product id), if the token is valid, not older than
        ``max_age`` seconds and made for this visitor."""
        try:
            data = signing.loads(token, salt=SIGNING_SALT, max_age=max_age or self.max_age)
        except signing.BadSignature:
            return None
        return data if isinstance(data, dict) and data.get("w") == visitor.digest else None

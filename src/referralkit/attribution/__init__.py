"""Attribution rules: codes, signed links, identities, fraud checks and resolution.

Everything here is pure: no I/O, no clock, no state kept between calls. Randomness
(``token_bytes``) and keys are passed in; the word lists ship with the package and are read
once. The engine wires these rules to events and the store.
"""

from referralkit.attribution._checks import (
    CircularCheck,
    DisposableEmailCheck,
    SameIdentityCheck,
    VelocityCheck,
    default_fraud_checks,
)
from referralkit.attribution._codes import (
    CROCKFORD,
    VANITY_MAX_LENGTH,
    VANITY_MIN_LENGTH,
    check_vanity_code,
    code_entropy_bits,
    collision_probability,
    generate_code,
    memorable_code,
    memorable_entropy_bits,
    memorable_words,
    normalise_code,
)
from referralkit.attribution._fraud import (
    DEFAULT_IDENTITY_ACTIONS,
    FraudAction,
    FraudCheck,
    FraudContext,
    FraudVerdict,
    IdentityFacts,
    check_circular,
    check_loop,
    check_same_identity,
    check_velocity,
    combine,
    sliding_count,
)
from referralkit.attribution._identity import (
    DEFAULT_EMAIL_RULES,
    KEYED_HASH_MIN_KEY_BYTES,
    EmailRules,
    disposable_domains,
    is_disposable_email,
    keyed_hash,
    normalise_email,
)
from referralkit.attribution._links import LINK_KEY_MIN_BYTES, TOKEN_MAX_LENGTH, LinkSigner
from referralkit.attribution._resolve import (
    DEFAULT_ATTRIBUTION_RULES,
    AttributionDecision,
    AttributionRules,
    Touch,
    TouchExplanation,
    TouchVerdict,
    resolve_attribution,
)

__all__ = [
    "CROCKFORD",
    "DEFAULT_ATTRIBUTION_RULES",
    "DEFAULT_EMAIL_RULES",
    "DEFAULT_IDENTITY_ACTIONS",
    "KEYED_HASH_MIN_KEY_BYTES",
    "LINK_KEY_MIN_BYTES",
    "TOKEN_MAX_LENGTH",
    "VANITY_MAX_LENGTH",
    "VANITY_MIN_LENGTH",
    "AttributionDecision",
    "AttributionRules",
    "CircularCheck",
    "DisposableEmailCheck",
    "EmailRules",
    "FraudAction",
    "FraudCheck",
    "FraudContext",
    "FraudVerdict",
    "IdentityFacts",
    "LinkSigner",
    "SameIdentityCheck",
    "Touch",
    "TouchExplanation",
    "TouchVerdict",
    "VelocityCheck",
    "check_circular",
    "check_loop",
    "check_same_identity",
    "check_vanity_code",
    "check_velocity",
    "code_entropy_bits",
    "collision_probability",
    "combine",
    "default_fraud_checks",
    "disposable_domains",
    "generate_code",
    "is_disposable_email",
    "keyed_hash",
    "memorable_code",
    "memorable_entropy_bits",
    "memorable_words",
    "normalise_code",
    "normalise_email",
    "resolve_attribution",
    "sliding_count",
]

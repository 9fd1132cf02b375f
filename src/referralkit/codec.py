"""A reversible JSON encoding of referralkit's records, for stores that keep them as text.

```python
from referralkit.codec import dumps, loads

text = dumps(outcome)  # events, outcomes, reward values, notification data, ...
assert loads(text) == outcome
```

Unlike the canonical encoding used for digests, this one decodes back to equal objects.
Every container is tagged, so user metadata may hold any JSON keys.
"""

from referralkit._values.codec import CodecError, decode, dumps, encode, loads

__all__ = ["CodecError", "decode", "dumps", "encode", "loads"]
